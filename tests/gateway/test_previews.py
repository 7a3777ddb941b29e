"""A long first sentence's preview: stored once per attempt, never in the WAV, streamed first."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import soundfile
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections

from gateway import formats, live, services
from gateway.models import AudioPreview, AudioSegment, JobStatus, SynthesisJob
from gateway.streaming import common
from gateway.streaming.audio import job_audio_chunks

from .conftest import EventFactory, sine_pcm
from .factories import SynthesisJobFactory

SEGMENT_0 = sine_pcm(seconds=0.6, frequency=330)
PREVIEW = SEGMENT_0[: 2 * 4410]  # its first 0.2 s, as the agent's first chunks would be
SEGMENT_1 = sine_pcm(seconds=0.3, frequency=440)


def apply(*events: Any) -> list[str]:
    return [services.job_apply_event(event=event) for event in events]


def reload(job: SynthesisJob) -> SynthesisJob:
    return SynthesisJob.objects.get(pk=job.pk)


def wav_bytes(job: SynthesisJob) -> bytes:
    with job.audio.open("rb") as handle:
        data, _ = soundfile.read(io.BytesIO(handle.read()), dtype="int16")
    return data.tobytes()


@pytest.mark.django_db
def test_a_preview_is_stored_once_and_left_out_of_the_wav(
    make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=2, length_class="long")
    preview = make_event("preview", job, pcm=PREVIEW)
    assert apply(make_event("started", job), preview) == ["applied", "applied"]
    stored = AudioPreview.objects.get(job=job)
    assert bytes(stored.pcm) == PREVIEW and stored.attempt == 1 and reload(job).preview_stored
    assert apply(preview, make_event("preview", job, pcm=SEGMENT_0[:200])) == ["duplicate", "duplicate"]
    assert bytes(AudioPreview.objects.get(job=job).pcm) == PREVIEW  # the first one stays

    assert apply(make_event("segment", job, first_sentence=0, pcm=SEGMENT_0)) == ["applied"]
    # Segment 0 is there: a preview (another delivery's) is moot.
    assert apply(make_event("preview", job, agent_id="agent-2", pcm=PREVIEW)) == ["duplicate"]
    apply(make_event("segment", job, first_sentence=1, pcm=SEGMENT_1))
    with django_capture_on_commit_callbacks(execute=True):
        assert apply(make_event("completed", job)) == ["applied"]

    done = reload(job)
    assert done.status == JobStatus.SUCCEEDED and not done.preview_stored
    assert wav_bytes(done) == SEGMENT_0 + SEGMENT_1  # the preview is no part of the audio
    assert not AudioPreview.objects.exists() and not AudioSegment.objects.exists()


@pytest.mark.django_db
def test_a_preview_of_an_older_attempt_is_stale_and_a_failed_job_drops_its_own(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2, attempt=2)
    assert apply(make_event("preview", job, attempt=1)) == ["stale"]
    assert not AudioPreview.objects.exists()

    assert apply(make_event("preview", job)) == ["applied"]
    assert reload(job).status == JobStatus.RUNNING  # the `started` was lost: the preview proves it runs
    apply(make_event("failed", job))
    failed = reload(job)
    assert failed.status == JobStatus.FAILED and not failed.preview_stored
    assert not AudioPreview.objects.exists()
    # The retry starts clean: the next attempt's first preview is stored like the first one.
    retried = services.job_retry(job=failed)
    assert retried.attempt == 3 and not retried.preview_stored
    assert apply(make_event("preview", retried)) == ["applied"]
    assert AudioPreview.objects.get(job=job).attempt == 3


@pytest.mark.django_db
def test_a_preview_in_the_batch_that_completes_its_job_is_deleted_with_it(
    make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    # A one-sentence job whose preview, segment and completion meet in one transaction: the
    # segment goes straight into the WAV (never stored), and the preview goes too.
    job = SynthesisJobFactory(sentence_count=1, length_class="short")
    events = [
        make_event("started", job),
        make_event("preview", job, pcm=PREVIEW),
        make_event("segment", job, first_sentence=0, pcm=SEGMENT_0),
        make_event("completed", job),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_apply_events(events=events) == ["applied"] * 4
    done = reload(job)
    assert done.status == JobStatus.SUCCEEDED and not done.preview_stored
    assert wav_bytes(done) == SEGMENT_0
    assert not AudioPreview.objects.exists()


@pytest.fixture
def quick_streams(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    # No broker here: streams re-read the job on a short keep-alive instead of live notices.
    monkeypatch.setattr(live.JobUpdateHub, "start", lambda self: None)
    monkeypatch.setattr(common, "LISTENER_READY_WAIT_S", 0.05)
    settings.TTS_SSE_KEEPALIVE_S = 0.05
    yield
    common.close_db_connections()
    live._hub = None


def _apply_on_a_thread(*events: Any) -> None:
    try:
        apply(*events)
    finally:
        connections.close_all()  # this thread's own connection: the test database is dropped after


async def _stream_while(job: SynthesisJob, segments: list[Any], completed: Any) -> tuple[bytes, bytes, bytes]:
    """The stream's first chunk; its next one once `segments` are applied; the rest once
    `completed` is. Events are applied on a thread of their own, as the consumer would."""
    chunks: AsyncIterator[bytes] = job_audio_chunks(job=job, fmt=formats.FORMATS["pcm"])
    first = await asyncio.wait_for(anext(chunks), timeout=10)
    await sync_to_async(_apply_on_a_thread, thread_sensitive=False)(*segments)
    second = await asyncio.wait_for(anext(chunks), timeout=10)
    await sync_to_async(_apply_on_a_thread, thread_sensitive=False)(completed)
    rest = [chunk async for chunk in chunks]
    return first, second, b"".join(rest)


@pytest.mark.django_db(transaction=True)  # the stream reads on its own threads
def test_the_stream_plays_the_preview_first_then_segment_0_from_its_last_frame(
    quick_streams: None, make_event: EventFactory
) -> None:
    job = SynthesisJobFactory(sentence_count=2, length_class="long")
    apply(make_event("started", job), make_event("preview", job, pcm=PREVIEW))
    segments = [
        make_event("segment", job, first_sentence=0, pcm=SEGMENT_0),
        make_event("segment", job, first_sentence=1, pcm=SEGMENT_1),
    ]
    first, second, rest = async_to_sync(_stream_while)(reload(job), segments, make_event("completed", job))
    assert first == PREVIEW  # before segment 0 exists
    assert second == SEGMENT_0[len(PREVIEW) :]  # segment 0 from the preview's last frame on
    assert first + second + rest == SEGMENT_0 + SEGMENT_1  # every frame once, in order


@pytest.mark.django_db(transaction=True)
def test_a_segment_0_from_another_delivery_goes_on_from_the_previews_length(
    quick_streams: None, make_event: EventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # The delivery that sent the preview died; another one made segment 0 with other noise.
    other_segment_0 = sine_pcm(seconds=0.6, frequency=350)
    job = SynthesisJobFactory(sentence_count=1, length_class="long")
    apply(make_event("started", job), make_event("preview", job, pcm=PREVIEW))
    segments = [make_event("segment", job, agent_id="agent-2", first_sentence=0, pcm=other_segment_0)]
    with caplog.at_level(logging.INFO, logger="gateway.streaming.audio"):
        first, second, rest = async_to_sync(_stream_while)(reload(job), segments, make_event("completed", job))
    assert first == PREVIEW and second == other_segment_0[len(PREVIEW) :] and rest == b""
    assert "does not begin with the preview" in caplog.text
