"""Applying agent events: idempotent, stale attempts ignored, one WAV per job."""

from __future__ import annotations

import io
from typing import Any

import pytest
import soundfile

from gateway import services
from gateway.models import AudioSegment, JobStatus, OutboxMessage, SynthesisJob
from tts_contracts import JobMessage

from .conftest import SAMPLE_RATE, EventFactory, sine_pcm
from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db


def apply(event: Any) -> str:
    return services.job_apply_event(event=event)


def reload(job: SynthesisJob) -> SynthesisJob:
    return SynthesisJob.objects.get(pk=job.pk)


def read_wav(job: SynthesisJob) -> tuple[Any, int]:
    with job.audio.open("rb") as handle:
        data, rate = soundfile.read(io.BytesIO(handle.read()), dtype="int16")
    return data, rate


# A short job's PCM comes with its segments; a long job's is read afterwards in bounded runs.
@pytest.mark.parametrize("length_class", ["short", "long"])
def test_full_run_assembles_the_wav_in_sentence_order(
    length_class: str, make_event: EventFactory, media_root: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=3, length_class=length_class)
    pcm = [sine_pcm(seconds=0.1 * (index + 1), frequency=300 + 100 * index) for index in range(3)]

    assert apply(make_event("started", job)) == "applied"
    assert reload(job).status == JobStatus.RUNNING
    # Out of order: sentence 2 arrives before 0 and 1.
    assert apply(make_event("segment", job, first_sentence=2, pcm=pcm[2])) == "applied"
    assert apply(make_event("segment", job, first_sentence=0, pcm=pcm[0])) == "applied"
    running = reload(job)
    assert running.sentences_done == 2
    assert running.progress == pytest.approx(2 / 3)
    assert running.first_segment_at is not None
    assert apply(make_event("segment", job, first_sentence=1, pcm=pcm[1])) == "applied"
    with django_capture_on_commit_callbacks(execute=True):  # the WAV moves into place on commit
        assert apply(make_event("completed", job, cached_sentences=1, synthesis_seconds=0.42)) == "applied"

    done = reload(job)
    assert done.status == JobStatus.SUCCEEDED
    assert done.progress == 1.0
    assert done.synthesis_seconds == 0.42
    assert done.cached_sentences == 1
    assert done.finished_at >= done.started_at >= done.queued_at
    assert done.audio_duration_s == pytest.approx(0.6, abs=1e-3)
    data, rate = read_wav(done)
    assert rate == SAMPLE_RATE
    assert data.tobytes() == b"".join(pcm)  # sentence order, bit-exact
    assert AudioSegment.objects.count() == 0  # deleted once the file exists
    assert str(media_root) in done.audio.path


def test_duplicate_events_are_ignored(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    started = make_event("started", job)
    segment = make_event("segment", job, first_sentence=0)
    assert apply(started) == "applied"
    assert apply(started) == "duplicate"
    assert apply(segment) == "applied"
    assert apply(segment) == "duplicate"
    assert AudioSegment.objects.count() == 1


def test_completed_twice_writes_one_file(
    make_event: EventFactory, media_root: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    apply(make_event("started", job))
    apply(make_event("segment", job))
    completed = make_event("completed", job)
    with django_capture_on_commit_callbacks(execute=True):
        assert apply(completed) == "applied"
    first_name = reload(job).audio.name
    # A redelivered job replays everything, completed included.
    assert apply(make_event("segment", job)) == "duplicate"
    assert apply(completed) == "duplicate"
    assert reload(job).audio.name == first_name
    assert len(list(media_root.rglob("*.wav"))) == 1


def test_stale_attempt_events_are_ignored(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(status=JobStatus.FAILED, sentence_count=1)
    job = services.job_retry(job=job)
    assert apply(make_event("started", job, attempt=1)) == "stale"
    assert apply(make_event("segment", job, attempt=1)) == "stale"
    assert apply(make_event("completed", job, attempt=1)) == "stale"
    assert reload(job).status == JobStatus.QUEUED
    assert AudioSegment.objects.count() == 0
    # The new attempt runs normally.
    for event in ("started", "segment", "completed"):
        assert apply(make_event(event, job, attempt=2)) == "applied"
    assert reload(job).status == JobStatus.SUCCEEDED


def test_events_of_unknown_job_or_future_attempt_are_invalid(make_event: EventFactory) -> None:
    job = SynthesisJobFactory()
    assert apply(make_event("started", job, attempt=5)) == "invalid"
    job.delete()
    assert apply(make_event("started", job)) == "invalid"


def test_failed_event_marks_failed_with_reason(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    apply(make_event("started", job))
    apply(make_event("segment", job))
    assert apply(make_event("failed", job, reason="the text could not be synthesized")) == "applied"
    failed = reload(job)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "the text could not be synthesized"
    assert failed.finished_at is not None
    assert AudioSegment.objects.count() == 0
    assert apply(make_event("completed", job)) == "stale"


def test_cancelled_job_ignores_events(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    apply(make_event("started", job))
    services.job_cancel(job=job)
    for event in ("started", "segment", "completed", "failed"):
        assert apply(make_event(event, job)) == "stale"
    cancelled = reload(job)
    assert cancelled.status == JobStatus.CANCELLED
    assert not cancelled.audio
    assert AudioSegment.objects.count() == 0


def test_segment_before_started_starts_the_job(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    assert apply(make_event("segment", job, first_sentence=1)) == "applied"
    assert reload(job).status == JobStatus.RUNNING
    assert apply(make_event("started", job)) == "duplicate"


def test_completed_with_missing_segments_re_sends_the_same_attempt(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=3)
    apply(make_event("started", job))
    apply(make_event("segment", job, first_sentence=0))
    apply(make_event("segment", job, first_sentence=2))
    # Sentence 1 was lost: the agent replays the attempt from its cache instead of failing it.
    assert apply(make_event("completed", job)) == "resent"
    running = reload(job)
    assert running.status == JobStatus.RUNNING
    assert not running.audio
    message = JobMessage.from_bytes(OutboxMessage.objects.get(job=job).payload.encode())
    assert (message.job_id, message.attempt) == (str(job.id), 1)
    apply(make_event("segment", job, first_sentence=1))
    assert apply(make_event("completed", job)) == "applied"
    assert reload(job).status == JobStatus.SUCCEEDED


def test_segments_cut_differently_by_two_deliveries_give_each_sentence_once(
    make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=3)
    pcm = [sine_pcm(seconds=0.1, frequency=300 + 100 * index) for index in range(3)]
    apply(make_event("started", job, agent_id="agent-a"))
    # agent-a sent sentences 0-1 in one segment, then crashed
    apply(make_event("segment", job, first_sentence=0, sentence_count=2, pcm=pcm[0] + pcm[1], agent_id="agent-a"))
    # agent-b cuts them one by one: its 0 is a duplicate, its 1 lies inside agent-a's segment
    apply(make_event("started", job, agent_id="agent-b"))
    apply(make_event("segment", job, first_sentence=0, pcm=pcm[0], agent_id="agent-b"))
    apply(make_event("segment", job, first_sentence=1, pcm=pcm[1], agent_id="agent-b"))
    apply(make_event("segment", job, first_sentence=2, pcm=pcm[2], agent_id="agent-b"))
    with django_capture_on_commit_callbacks(execute=True):
        assert apply(make_event("completed", job, agent_id="agent-b")) == "applied"
    data, _ = read_wav(reload(job))
    assert data.tobytes() == b"".join(pcm)


def test_redelivery_to_another_agent_keeps_the_job_running(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    apply(make_event("started", job, agent_id="agent-a"))
    apply(make_event("segment", job, first_sentence=0, agent_id="agent-a"))
    # agent-a crashed; agent-b replays from the cache
    assert apply(make_event("started", job, agent_id="agent-b")) == "applied"
    assert apply(make_event("segment", job, first_sentence=0, agent_id="agent-b")) == "duplicate"
    assert apply(make_event("segment", job, first_sentence=1, agent_id="agent-b")) == "applied"
    assert apply(make_event("completed", job, agent_id="agent-b")) == "applied"
    done = reload(job)
    assert done.status == JobStatus.SUCCEEDED
    assert done.agent_id == "agent-b"


def dead_letter(job: SynthesisJob, *, attempt: int | None = None) -> JobMessage:
    return JobMessage(
        job_id=str(job.id),
        attempt=job.attempt if attempt is None else attempt,
        text=job.text,
        voice=job.voice,
        length_class=job.length_class,
    )


def test_dead_letter_fails_the_job_readably(settings: Any) -> None:
    settings.TTS_MAX_ATTEMPTS = 3
    job = SynthesisJobFactory(status=JobStatus.RUNNING)
    assert services.job_fail_dead_letter(message=dead_letter(job)) == "applied"
    failed = reload(job)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "agent_crashed_repeatedly")
    assert failed.error == "no agent finished the job in 30 deliveries: the agents holding it crashed or were stopped"
    assert services.job_fail_dead_letter(message=dead_letter(job)) == "duplicate"


def test_dead_letter_of_old_attempt_or_done_job_is_ignored(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(status=JobStatus.FAILED)
    job = services.job_retry(job=job)
    assert services.job_fail_dead_letter(message=dead_letter(job, attempt=1)) == "stale"
    assert reload(job).status == JobStatus.QUEUED
    done = SynthesisJobFactory(status=JobStatus.SUCCEEDED)
    assert services.job_fail_dead_letter(message=dead_letter(done)) == "stale"
    assert reload(done).status == JobStatus.SUCCEEDED


def test_segment_pcm_is_stored_uncompressed_out_of_line_on_postgres(make_event: EventFactory) -> None:
    """Migration 0008: no pglz attempt per segment (audio barely compresses), and the bytes
    come back as they were sent."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a Postgres column setting")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'gateway_audiosegment'::regclass AND attname = 'pcm'"
        )
        assert cursor.fetchone() == ("e",)  # EXTERNAL; Postgres's default for bytea is "x" (EXTENDED)
    job = SynthesisJobFactory(sentence_count=2)
    segment = make_event("segment", job)
    assert apply(make_event("started", job)) == "applied"
    assert apply(segment) == "applied"
    assert bytes(AudioSegment.objects.get(job=job).pcm) == segment.pcm
