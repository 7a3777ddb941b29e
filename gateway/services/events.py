"""Applying agent events (and dead-lettered job messages) to their jobs.

Idempotent: replays and redeliveries leave the job as the first delivery did. Events of an older
attempt are stale; events of a job that already ended change nothing.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from tts_contracts import (
    CompletedEvent,
    FailedEvent,
    HeartbeatEvent,
    JobEvent,
    JobMessage,
    SegmentEvent,
    StartedEvent,
)

from .. import metrics
from ..models import AudioSegment, JobStatus, SynthesisJob
from .audio import job_audio_store, segment_chain
from .outbox import outbox_create
from .transitions import event_time, job_mark_failed, job_mark_running, job_mark_succeeded

logger = logging.getLogger(__name__)

APPLIED, DUPLICATE, STALE, INVALID, RESENT = "applied", "duplicate", "stale", "invalid", "resent"


def job_apply_event(*, event: JobEvent) -> str:
    """Apply one agent event to its job; return applied / duplicate / stale / invalid / resent.

    A `completed` whose segments are not all stored re-sends the job message (same attempt: the
    agent replays the sentences from its cache, the lost segments arrive again) and returns
    `resent`; after TTS_MAX_STALL_REPUBLISHES re-sends of the attempt the job fails.
    """
    result = _job_apply_event(event=event)
    metrics.EVENTS_APPLIED.labels(type=event.type, result=result).inc()
    if result == APPLIED and event.sent_at > 0:
        metrics.EVENT_LAG.observe(max(0.0, timezone.now().timestamp() - event.sent_at))
    return result


def _job_locked(job_id: str) -> SynthesisJob | None:
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        return None
    # No `.first()`: it would add an ORDER BY to a primary-key lookup.
    return next(iter(SynthesisJob.objects.select_for_update().filter(pk=pk)), None)


def _column_values(job: SynthesisJob) -> dict[str, object]:
    """The row as last read or saved, to save only what an event changed (a file by its name)."""
    values: dict[str, object] = {}
    for field in SynthesisJob._meta.concrete_fields:
        value = getattr(job, field.attname)
        values[field.attname] = value.name if isinstance(value, FieldFile) else value
    return values


def _job_save_changes(*, job: SynthesisJob, before: dict[str, object]) -> None:
    """One UPDATE of the columns that differ from `before` (the whole row costs a full write and
    the CPU to build it, per event)."""
    after = _column_values(job)
    changed = [name for name, value in after.items() if before[name] != value]
    if changed:
        job.save(update_fields=changed)


def _job_apply_event(*, event: JobEvent) -> str:
    # savepoint=False: inside a batch of events (EventConsumer) a failure rolls the whole batch
    # back and the consumer applies its events one by one; alone this is the event's transaction.
    with transaction.atomic(savepoint=False):
        job = _job_locked(event.job_id)
        if job is None:
            logger.warning("event %s for unknown job %s ignored", event.type, event.job_id)
            return INVALID
        if event.attempt < job.attempt:
            return STALE
        if event.attempt > job.attempt:
            logger.warning("event %s for job %s has attempt %d > %d", event.type, job.id, event.attempt, job.attempt)
            return INVALID
        if job.is_final:
            return DUPLICATE if job.status == JobStatus.SUCCEEDED else STALE
        before = _column_values(job)
        if isinstance(event, StartedEvent):
            result = _apply_started(job=job, event=event)
        elif isinstance(event, SegmentEvent):
            result = _apply_segment(job=job, event=event)
        elif isinstance(event, CompletedEvent):
            result = _apply_completed(job=job, event=event)
        elif isinstance(event, FailedEvent):
            result = _apply_failed(job=job, event=event)
        elif isinstance(event, HeartbeatEvent):
            result = _apply_heartbeat(job=job, event=event)
        else:
            logger.warning("job %s: %s events are not applied by this gateway", job.id, event.type)
            return INVALID
        # Any event of the current attempt, a duplicate too, proves an agent works on the job:
        # the stalled-job watchdog measures silence from here (consumer clock, not the agent's).
        job.last_event_at = timezone.now()
        _job_save_changes(job=job, before=before)
        return result


def _apply_started(*, job: SynthesisJob, event: StartedEvent) -> str:
    if job.status == JobStatus.RUNNING:
        if job.agent_id == event.agent_id:
            return DUPLICATE
        # Redelivered to another agent (the first one crashed): same attempt, new worker.
        logger.info("job %s restarted by agent %s (was %s)", job.id, event.agent_id, job.agent_id)
        job.agent_id = event.agent_id
        return APPLIED
    job_mark_running(job=job, event=event)
    job.sentence_count = event.sentence_count
    job.sample_rate = event.sample_rate
    return APPLIED


def _apply_segment(*, job: SynthesisJob, event: SegmentEvent) -> str:
    if AudioSegment.objects.filter(job=job, attempt=event.attempt, first_sentence=event.first_sentence).exists():
        return DUPLICATE  # a redelivered job replays the same sentences from the cache
    job_mark_running(job=job, event=event)  # the started event was lost: the segment proves it runs
    # No savepoint around the insert: only this consumer writes segments, under the job's row
    # lock taken above, so the check above cannot race. Should the unique constraint still
    # fire, the transaction fails and the consumer's retry finds the segment stored.
    AudioSegment.objects.create(
        job=job,
        attempt=event.attempt,
        first_sentence=event.first_sentence,
        sentence_count=event.sentence_count,
        sample_rate=event.sample_rate,
        pcm=event.pcm,
        audio_seconds=event.audio_seconds,
        cached_sentences=event.cached_sentences,
    )
    # New sentences are real progress: the stall budget is for jobs that stop moving, not for a
    # long job that hit several separate broker hiccups.
    job.stall_republishes = 0
    done = AudioSegment.objects.filter(job=job, attempt=event.attempt).aggregate(n=Sum("sentence_count"))["n"] or 0
    job.sentences_done = min(done, job.sentence_count) if job.sentence_count else done  # overlaps count once
    if job.sentence_count:
        job.progress = min(done / job.sentence_count, 0.99)  # 1.0 only once the file exists
    if job.first_segment_at is None:
        job.first_segment_at = event_time(event, not_before=job.started_at or job.queued_at)
        metrics.TIME_TO_FIRST_SEGMENT.labels(length_class=job.length_class).observe(job.time_to_first_segment_s or 0.0)
    return APPLIED


def _apply_completed(*, job: SynthesisJob, event: CompletedEvent) -> str:
    chain = segment_chain(job=job, attempt=event.attempt, expected=event.sentence_count)
    problem = chain.problem(expected=event.sentence_count)
    job_mark_running(job=job, event=event)
    if problem is not None:
        return _completed_incomplete(job=job, event=event, problem=problem, resend=len(chain.sample_rates) <= 1)

    sample_rate = next(iter(chain.sample_rates))
    stored = job_audio_store(job=job, segments=chain.segments, sample_rate=sample_rate)
    if stored.error:
        job_mark_failed(job=job, code="storage_full", error=f"the audio could not be stored: {stored.error}")
        return APPLIED
    job.sample_rate = sample_rate
    job.audio_duration_s = stored.frames / sample_rate
    job.sentence_count = job.sentences_done = chain.covered
    job.progress = 1.0
    job.synthesis_seconds = event.synthesis_seconds
    job.cached_sentences = event.cached_sentences
    job.agent_id = event.agent_id or job.agent_id
    job_mark_succeeded(job=job, at=event_time(event, not_before=job.started_at))
    metrics.JOB_LATENCY.labels(length_class=job.length_class).observe(job.latency_s or 0.0)
    logger.info(
        "job %s succeeded: %.2fs of audio from %d segments, %d cached sentences",
        job.id,
        job.audio_duration_s,
        len(chain.segments),
        job.cached_sentences,
    )
    return APPLIED


def _completed_incomplete(*, job: SynthesisJob, event: CompletedEvent, problem: str, resend: bool) -> str:
    """Segments are missing (lost by the broker, or dead-lettered): re-send the job message so the
    agent replays them from its cache, instead of waiting on broker redeliveries (which Pulsar
    does not count for every subscription type). Segments that disagree cannot be repaired."""
    if resend and job.stall_republishes < settings.TTS_MAX_STALL_REPUBLISHES:
        job.stall_republishes += 1
        outbox_create(job=job)
        metrics.JOBS_REPUBLISHED.labels(length_class=job.length_class).inc()
        logger.warning(
            "job %s attempt %d completed with %s; job message re-sent (%d of %d)",
            job.id,
            event.attempt,
            problem,
            job.stall_republishes,
            settings.TTS_MAX_STALL_REPUBLISHES,
        )
        return RESENT
    logger.error("job %s attempt %d failed on completion: %s", job.id, event.attempt, problem)
    job_mark_failed(job=job, code="synthesis_error", error=f"synthesis failed: {problem}")
    return APPLIED


def _apply_heartbeat(*, job: SynthesisJob, event: HeartbeatEvent) -> str:
    """The agent still holds the job (running, or paused behind higher-priority work): liveness
    for the watchdog, and progress the owner sees while no segment arrives."""
    job.last_heartbeat_at = timezone.now()
    if event.sentence_count and job.status == JobStatus.RUNNING:
        job.progress = max(job.progress, min(event.sentences_done / event.sentence_count, 0.99))
    return APPLIED


def _apply_failed(*, job: SynthesisJob, event: FailedEvent) -> str:
    job_mark_running(job=job, event=event)
    job_mark_failed(job=job, code=event.code, error=event.reason)
    logger.warning(
        "job %s attempt %d failed on agent %s: %s (%s, %s)",
        job.id,
        event.attempt,
        event.agent_id,
        event.reason,
        event.code,
        event.error_type,
    )
    return APPLIED


def job_fail_dead_letter(*, message: JobMessage) -> str:
    """A job message the agents gave up on (dead-letter topic): fail the job with a readable reason."""
    with transaction.atomic():
        job = _job_locked(message.job_id)
        if job is None:
            result = INVALID
        elif message.attempt != job.attempt:
            result = STALE
        elif job.is_final:
            result = DUPLICATE if job.status == JobStatus.FAILED else STALE
        else:
            job_mark_failed(
                job=job,
                code="agent_crashed_repeatedly",
                error=(
                    f"no agent finished the job in {settings.TTS_DEAD_LETTER_AFTER_DELIVERIES} deliveries: "
                    "the agents holding it crashed or were stopped"
                ),
            )
            job.save()
            logger.error("job %s attempt %d dead-lettered: marked failed", job.id, job.attempt)
            result = APPLIED
    metrics.EVENTS_APPLIED.labels(type="dead_letter", result=result).inc()
    return result
