"""The stalled-job watchdog: running jobs silent too long are re-published, then failed."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateway import relay, services
from gateway.models import JobStatus, OutboxMessage, SynthesisJob
from tts_contracts import JobMessage

from .conftest import EventFactory
from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db

STALLED_AFTER_S = 120.0


def reload(job: SynthesisJob) -> SynthesisJob:
    return SynthesisJob.objects.get(pk=job.pk)


def running_job(*, silent_s: float, last_event: bool = True, **fields: Any) -> SynthesisJob:
    """A running job whose agent last spoke `silent_s` ago (`started_at` only if not `last_event`)."""
    at = timezone.now() - timedelta(seconds=silent_s)
    return SynthesisJobFactory(
        status=JobStatus.RUNNING,
        queued_at=at - timedelta(seconds=1),
        started_at=at,
        last_event_at=at if last_event else None,
        agent_id="agent-test",
        **fields,
    )


def republish(*, now: datetime | None = None) -> int:
    return services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now)


def test_stalled_running_job_gets_its_job_message_again(caplog: Any) -> None:
    job = running_job(silent_s=300, length_class="medium", params={"length_scale": 1.2})
    with caplog.at_level(logging.WARNING, logger="gateway.services"):
        assert republish() == 1

    record = OutboxMessage.objects.get(job=job)
    assert record.attempt == job.attempt == 1
    assert record.topic.endswith("-jobs-medium")
    assert record.partition_key == str(job.id)
    message = JobMessage.from_bytes(record.payload.encode("utf-8"))
    # The same message submit wrote: the agent replays the finished sentences from its cache.
    assert message == JobMessage(
        job_id=str(job.id),
        attempt=1,
        text=job.text,
        voice=job.voice,
        length_class="medium",
        params={"length_scale": 1.2},
        submitted_at=job.queued_at.timestamp(),
    )
    stalled = reload(job)
    assert stalled.status == JobStatus.RUNNING
    assert stalled.stall_republishes == 1
    assert timezone.now() - stalled.last_event_at < timedelta(seconds=5)
    assert f"job {job.id} attempt 1 silent for 300 s" in caplog.text


def test_job_with_no_event_since_start_counts_from_started_at() -> None:
    job = running_job(silent_s=200, last_event=False)
    assert republish() == 1
    assert OutboxMessage.objects.filter(job=job).count() == 1


def test_fresh_running_queued_and_final_jobs_are_left_alone(settings: Any) -> None:
    settings.TTS_QUEUED_JOB_RESEND_AFTER_S = 7200
    settings.TTS_QUEUED_JOB_OVERTAKEN_S = 0  # the running job below overtook the queued one
    running_job(silent_s=30)
    old = timezone.now() - timedelta(hours=1)
    SynthesisJobFactory(status=JobStatus.QUEUED, queued_at=old)  # within its own, longer deadline
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        SynthesisJobFactory(status=status, queued_at=old, started_at=old, last_event_at=old, finished_at=old)

    assert republish() == 0
    assert OutboxMessage.objects.count() == 0
    assert SynthesisJob.objects.filter(stall_republishes__gt=0).count() == 0


def test_a_recent_event_outweighs_an_old_start() -> None:
    job = running_job(silent_s=3600)
    SynthesisJob.objects.filter(pk=job.pk).update(last_event_at=timezone.now() - timedelta(seconds=10))
    assert republish() == 0


def test_the_bump_republishes_at_most_once_per_period() -> None:
    job = running_job(silent_s=300)
    now = timezone.now()
    assert republish(now=now) == 1
    assert republish(now=now + timedelta(seconds=1)) == 0
    assert republish(now=now + timedelta(seconds=STALLED_AFTER_S - 1)) == 0
    assert OutboxMessage.objects.filter(job=job).count() == 1
    assert republish(now=now + timedelta(seconds=STALLED_AFTER_S + 1)) == 1
    assert OutboxMessage.objects.filter(job=job).count() == 2
    assert reload(job).stall_republishes == 2


def test_after_max_republishes_the_job_fails_readably(settings: Any) -> None:
    settings.TTS_MAX_STALL_REPUBLISHES = 2
    job = running_job(silent_s=300)
    now = timezone.now()
    for tick in range(2):
        assert republish(now=now + timedelta(seconds=tick * (STALLED_AFTER_S + 1))) == 1
    assert reload(job).status == JobStatus.RUNNING

    assert republish(now=now + timedelta(seconds=2 * (STALLED_AFTER_S + 1))) == 0
    failed = reload(job)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "synthesis stalled: no progress for 121 s after 2 retries"
    assert failed.finished_at is not None
    assert OutboxMessage.objects.filter(job=job).count() == 2  # nothing more was sent
    # A retry starts a new attempt with a fresh allowance.
    retried = services.job_retry(job=failed)
    assert (retried.attempt, retried.stall_republishes, retried.last_event_at) == (2, 0, None)


def test_events_of_the_current_attempt_update_last_event_at(make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    assert job.last_event_at is None
    started = make_event("started", job)
    assert services.job_apply_event(event=started) == "applied"
    first = reload(job).last_event_at
    assert first is not None

    # A duplicate proves the agent is alive too.
    assert services.job_apply_event(event=started) == "duplicate"
    second = reload(job).last_event_at
    assert second > first
    assert services.job_apply_event(event=make_event("segment", job, first_sentence=0)) == "applied"
    assert reload(job).last_event_at > second


def test_new_sentences_reset_the_stall_budget_but_duplicates_do_not(make_event: EventFactory) -> None:
    job = running_job(silent_s=300, sentence_count=3)
    assert republish() == 1
    assert reload(job).stall_republishes == 1
    # Sentence 0 arrives for the first time: real progress, the budget is whole again.
    assert services.job_apply_event(event=make_event("segment", job, first_sentence=0)) == "applied"
    assert reload(job).stall_republishes == 0
    # A replay of sentence 0 after more re-sends is no progress: the spent budget stays spent.
    SynthesisJob.objects.filter(pk=job.pk).update(stall_republishes=2)
    assert services.job_apply_event(event=make_event("segment", job, first_sentence=0)) == "duplicate"
    assert reload(job).stall_republishes == 2
    assert services.job_apply_event(event=make_event("segment", job, first_sentence=1)) == "applied"
    assert reload(job).stall_republishes == 0


def test_stale_attempt_events_do_not_update_last_event_at(make_event: EventFactory) -> None:
    job = services.job_retry(job=SynthesisJobFactory(status=JobStatus.FAILED, sentence_count=1))
    assert job.attempt == 2
    assert services.job_apply_event(event=make_event("started", job, attempt=1)) == "stale"
    assert services.job_apply_event(event=make_event("segment", job, attempt=1)) == "stale"
    assert reload(job).last_event_at is None


def test_relay_thread_runs_the_watchdog_and_survives_its_errors(settings: Any, monkeypatch: Any, caplog: Any) -> None:
    settings.TTS_STALLED_JOB_AFTER_S = 42.0
    calls: list[float] = []

    def failing_watchdog(*, stalled_after_s: float) -> int:
        calls.append(stalled_after_s)
        raise RuntimeError("database went away")

    monkeypatch.setattr(relay, "outbox_relay_pending", lambda **_: None)
    monkeypatch.setattr(relay, "job_republish_stalled", failing_watchdog)
    stop = threading.Event()
    with caplog.at_level(logging.ERROR, logger="gateway.relay"):
        thread = relay.start_relay_thread(stop=stop, interval_s=0.01)
        while len(calls) < 3 and thread.is_alive():
            stop.wait(0.01)
        stop.set()
        thread.join(timeout=5)
    assert calls[:3] == [42.0, 42.0, 42.0]  # every tick, after an error too
    assert "stalled-job watchdog round failed" in caplog.text
    assert "database went away" in caplog.text


def test_watchdog_is_off_at_zero(settings: Any, monkeypatch: Any) -> None:
    settings.TTS_STALLED_JOB_AFTER_S = 0
    monkeypatch.setattr(relay, "job_republish_stalled", lambda **_: pytest.fail("watchdog ran while off"))
    assert relay.watchdog_round() == 0


def test_a_paused_job_that_keeps_heartbeating_is_never_re_sent_nor_failed(
    make_event: EventFactory, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A long job paused behind short work sends no audio for a long time, only heartbeats."""
    settings.TTS_MAX_STALL_REPUBLISHES = 1
    stalled_after_s = 0.3
    job = SynthesisJobFactory(sentence_count=4)
    services.job_apply_event(event=make_event("started", job))
    services.job_apply_event(event=make_event("segment", job, first_sentence=0))
    paused_since = time.monotonic()
    while time.monotonic() - paused_since < 5 * stalled_after_s:  # more than 4x the threshold
        heartbeat = make_event("heartbeat", job, sentences_done=2, sentence_count=4, paused=True)
        assert services.job_apply_event(event=heartbeat) == "applied"
        assert services.job_republish_stalled(stalled_after_s=stalled_after_s) == 0
        time.sleep(stalled_after_s / 3)
    paused = reload(job)
    assert (paused.status, paused.stall_republishes) == (JobStatus.RUNNING, 0)
    assert paused.last_heartbeat_at is not None
    assert paused.progress == pytest.approx(0.5)  # as the holder reports it
    assert OutboxMessage.objects.filter(job=job).count() == 0

    # Resumed: it succeeds once.
    for index in range(1, 4):
        services.job_apply_event(event=make_event("segment", job, first_sentence=index))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_apply_event(event=make_event("completed", job)) == "applied"
    assert reload(job).status == JobStatus.SUCCEEDED

    # The control: the same job without heartbeats is re-sent once the threshold passes.
    silent = SynthesisJobFactory(sentence_count=4)
    services.job_apply_event(event=make_event("started", silent))
    time.sleep(stalled_after_s + 0.05)
    assert services.job_republish_stalled(stalled_after_s=stalled_after_s) == 1


def test_a_queued_job_with_no_event_past_its_deadline_is_re_sent_never_failed(settings: Any) -> None:
    settings.TTS_MAX_STALL_REPUBLISHES = 1
    lost = SynthesisJobFactory(status=JobStatus.QUEUED, queued_at=timezone.now() - timedelta(seconds=700))
    fresh = SynthesisJobFactory(status=JobStatus.QUEUED)
    now = timezone.now()
    for tick in range(3):  # more re-sends than TTS_MAX_STALL_REPUBLISHES: a queued job is not failed
        at = now + timedelta(seconds=tick * 601)
        assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, queued_after_s=600, now=at) == 1 + (
            tick > 0
        )
    assert reload(lost).status == JobStatus.QUEUED
    assert OutboxMessage.objects.filter(job=lost).count() == 3
    assert OutboxMessage.objects.filter(job=fresh).count() == 2  # due from the second tick on
    message = JobMessage.from_bytes(OutboxMessage.objects.filter(job=lost).first().payload.encode())
    assert (message.job_id, message.attempt) == (str(lost.id), 1)


def test_failure_codes_of_the_watchdog_and_cancel(settings: Any) -> None:
    settings.TTS_MAX_STALL_REPUBLISHES = 0
    job = running_job(silent_s=300)
    assert republish() == 0
    assert (reload(job).status, reload(job).error_code) == (JobStatus.FAILED, "stalled")
    cancelled = services.job_cancel(job=SynthesisJobFactory(status=JobStatus.QUEUED))
    assert (cancelled.error_code, reload(cancelled).error_code) == ("cancelled", "cancelled")
    retried = services.job_retry(job=cancelled)
    assert retried.error_code == ""


def test_a_re_sent_job_waiting_behind_a_backlog_is_not_failed_before_the_floor(settings: Any) -> None:
    """Re-sends go to the back of the class's queue: only silence past the floor is a stall."""
    settings.TTS_MAX_STALL_REPUBLISHES = 2
    settings.TTS_STALLED_JOB_FAIL_AFTER_S = 10 * STALLED_AFTER_S
    job = running_job(silent_s=300)
    now = timezone.now()
    for tick in range(10):
        assert republish(now=now + timedelta(seconds=tick * (STALLED_AFTER_S + 1))) == 1
    assert reload(job).status == JobStatus.RUNNING and reload(job).stall_republishes == 10
    assert republish(now=now + timedelta(seconds=10 * (STALLED_AFTER_S + 1))) == 0
    assert reload(job).status == JobStatus.FAILED and reload(job).error_code == "stalled"


def _queued(at: datetime, **fields: Any) -> SynthesisJob:
    return SynthesisJobFactory(status=JobStatus.QUEUED, queued_at=at, **fields)


def _started(queued_at: datetime, started_at: datetime, **fields: Any) -> SynthesisJob:
    return SynthesisJobFactory(
        status=JobStatus.RUNNING, queued_at=queued_at, started_at=started_at, last_event_at=started_at, **fields
    )


def test_a_queued_job_overtaken_by_a_later_one_of_its_topic_is_re_sent_at_once(settings: Any) -> None:
    """Agents take a topic in order: a later job running for TTS_QUEUED_JOB_OVERTAKEN_S while this
    one has no event means its message went down with an agent, long before the 600 s deadline."""
    settings.TTS_QUEUED_JOB_RESEND_AFTER_S = 600
    settings.TTS_QUEUED_JOB_OVERTAKEN_S = 15
    now = timezone.now()
    lost = _queued(now - timedelta(seconds=40), length_class="short", voice="en_US-joe-medium")
    _started(now - timedelta(seconds=39), now - timedelta(seconds=20), length_class="short", voice="en_US-joe-medium")

    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now) == 1
    assert OutboxMessage.objects.filter(job=lost).count() == 1
    assert reload(lost).status == JobStatus.QUEUED and reload(lost).stall_republishes == 0
    # Once re-sent, only a job queued after the re-send counts: the same one overtakes no more.
    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now + timedelta(seconds=60)) == 0
    _started(now + timedelta(seconds=1), now + timedelta(seconds=2), length_class="short", voice="en_US-joe-medium")
    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now + timedelta(seconds=60)) == 1
    assert OutboxMessage.objects.filter(job=lost).count() == 2


def test_a_job_is_not_overtaken_by_another_topic_an_earlier_job_or_a_recent_start(settings: Any) -> None:
    settings.TTS_QUEUED_JOB_RESEND_AFTER_S = 600
    settings.TTS_QUEUED_JOB_OVERTAKEN_S = 15
    now = timezone.now()
    waiting = _queued(now - timedelta(seconds=40), length_class="long", voice="en_US-joe-medium")
    _started(now - timedelta(seconds=39), now - timedelta(seconds=30), length_class="short", voice="en_US-joe-medium")
    _started(now - timedelta(seconds=39), now - timedelta(seconds=30), length_class="long", voice="en_GB-other-low")
    _started(now - timedelta(seconds=50), now - timedelta(seconds=30), length_class="long", voice="en_US-joe-medium")
    _started(now - timedelta(seconds=39), now - timedelta(seconds=10), length_class="long", voice="en_US-joe-medium")

    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now) == 0
    assert OutboxMessage.objects.filter(job=waiting).count() == 0
    # Off at 0; on, the recent start counts once it is old enough.
    settings.TTS_QUEUED_JOB_OVERTAKEN_S = 0
    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now + timedelta(seconds=10)) == 0
    settings.TTS_QUEUED_JOB_OVERTAKEN_S = 15
    assert services.job_republish_stalled(stalled_after_s=STALLED_AFTER_S, now=now + timedelta(seconds=10)) == 1
