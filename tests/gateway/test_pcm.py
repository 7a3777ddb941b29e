"""Segment PCM written and read as binary parameters and results (gateway/services/pcm.py)."""

from __future__ import annotations

import os

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from gateway.models import AudioSegment
from gateway.services.pcm import pcm_by_pk, segment_insert

from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db

EVERY_BYTE = bytes(range(256)) * 4  # NUL and the bytes a text encoding would have to escape


def new_segment(job: object, first_sentence: int, pcm: bytes) -> AudioSegment:
    return AudioSegment(
        job=job,
        attempt=2,
        first_sentence=first_sentence,
        sentence_count=3,
        sample_rate=22050,
        pcm=pcm,
        audio_seconds=len(pcm) / 44100,
        cached_sentences=1,
    )


def test_a_segment_inserted_as_binary_reads_back_the_same_through_the_orm_and_as_binary() -> None:
    job = SynthesisJobFactory()
    pcms = [EVERY_BYTE, b"", os.urandom(300_000)]
    segments = [new_segment(job, index, pcm) for index, pcm in enumerate(pcms)]
    for segment in segments:
        segment_insert(segment)
        assert segment.pk is not None and not segment._state.adding

    stored = {segment.pk: segment for segment in AudioSegment.objects.filter(job=job)}
    assert set(stored) == {segment.pk for segment in segments}
    for segment, pcm in zip(segments, pcms, strict=True):
        row = stored[segment.pk]
        assert bytes(row.pcm) == pcm
        assert (row.attempt, row.first_sentence, row.sentence_count, row.sample_rate) == (
            2,
            segment.first_sentence,
            3,
            22050,
        )
        assert row.audio_seconds == pytest.approx(len(pcm) / 44100) and row.cached_sentences == 1
        assert row.received_at == segment.received_at
    assert pcm_by_pk([segment.pk for segment in segments]) == {
        segment.pk: pcm for segment, pcm in zip(segments, pcms, strict=True)
    }
    assert pcm_by_pk([]) == {}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the binary path is Postgres's")
def test_on_postgres_the_pcm_travels_as_a_parameter_not_inside_the_logged_sql() -> None:
    job = SynthesisJobFactory()
    segment = new_segment(job, 0, os.urandom(300_000))
    with CaptureQueriesContext(connection) as context:
        segment_insert(segment)
        assert pcm_by_pk([segment.pk]) == {segment.pk: bytes(segment.pcm)}
    # Both statements are in Django's query log (the query budgets count them), and neither
    # carries 600 KB of hex: the client-binding cursor put the PCM into the statement's text.
    assert len(context.captured_queries) == 2
    assert all(len(query["sql"]) < 2_000 for query in context.captured_queries)
    assert context.captured_queries[0]["sql"].startswith("INSERT INTO")


def test_a_database_error_comes_out_as_djangos_and_rolls_back_only_its_transaction() -> None:
    job = SynthesisJobFactory()
    segment_insert(new_segment(job, 0, EVERY_BYTE))
    # The consumer retries on Django's DatabaseError; psycopg's own errors would pass its handler.
    with pytest.raises(IntegrityError), transaction.atomic():
        segment_insert(new_segment(job, 0, b"again"))
    assert [bytes(row.pcm) for row in AudioSegment.objects.filter(job=job)] == [EVERY_BYTE]
