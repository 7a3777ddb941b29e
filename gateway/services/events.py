"""Applying agent events (and dead-lettered job messages) to their jobs.

Idempotent: replays and redeliveries leave the job as the first delivery did. Events of an older
attempt are stale; events of a job that already ended change nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from functools import partial

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
    PreviewEvent,
    SegmentEvent,
    StartedEvent,
)

from .. import metrics
from ..models import AudioPreview, AudioSegment, JobStatus, SynthesisJob
from .audio import chain_of, job_audio_store, segment_chain
from .outbox import outbox_create
from .pcm import segment_insert
from .transitions import event_time, job_mark_failed, job_mark_running, job_mark_succeeded

logger = logging.getLogger(__name__)

APPLIED, DUPLICATE, STALE, INVALID, RESENT = "applied", "duplicate", "stale", "invalid", "resent"


def job_apply_event(*, event: JobEvent) -> str:
    """Apply one agent event to its job; return applied / duplicate / stale / invalid / resent.

    A `completed` whose segments are not all stored re-sends the job message (same attempt: the
    agent replays the sentences from its cache, the lost segments arrive again) and returns
    `resent`; after TTS_MAX_STALL_REPUBLISHES re-sends of the attempt the job fails.
    """
    with transaction.atomic():
        job = _jobs_locked([event.job_id]).get(event.job_id)
        before = _column_values(job) if job is not None else {}
        result = _job_apply_locked(job=job, event=event, held={})
        if job is not None:
            _job_save_changes(job=job, before=before)
    return _counted(event, result)


def job_apply_events(
    *, events: Sequence[JobEvent], on_applied: Callable[[JobEvent, str], None] | None = None
) -> list[str]:
    """Apply `events` in order in ONE transaction, as `job_apply_event` would one by one; their
    jobs are locked by one query, and each row is read once and written once (the columns its
    events changed, after the last of them) however many of its events come.

    A job's segments followed by its `completed` in the same batch, while none of its attempt is
    stored, are held in memory and go straight into the WAV: never inserted, read back and
    deleted in the one transaction (no other transaction could have seen them). A short job's
    segment and completion usually arrive together; storing its PCM cost the consumer and
    Postgres about as much as the rest of the batch.

    `on_applied(event, result)` runs inside the transaction right after each event (to register
    after-commit hooks in event order). An exception rolls every event of the batch back; the
    events are counted in the metrics only once the batch is committed (the caller applies a
    rolled-back batch again one by one).
    """
    results: list[str] = []
    completed_follows = _completed_follows(events)
    held: HeldSegments = {}
    with transaction.atomic():
        jobs = _jobs_locked([event.job_id for event in events])
        # By primary key: a job named by two spellings of its id is one row, saved once.
        before = {job.pk: (job, _column_values(job)) for job in jobs.values()}
        for event, hold in zip(events, completed_follows, strict=True):
            results.append(_job_apply_locked(job=jobs.get(event.job_id), event=event, held=held, hold=hold))
            if on_applied is not None:
                on_applied(event, results[-1])
        # Nothing in the transaction reads a job's row back before this (only its segments), so
        # one UPDATE per job leaves the row as one UPDATE per event would.
        for job, columns in before.values():
            _job_save_changes(job=job, before=columns)
    for event, result in zip(events, results, strict=True):
        _counted(event, result)
    return results


def _counted(event: JobEvent, result: str) -> str:
    metrics.EVENTS_APPLIED.labels(type=event.type, result=result).inc()
    if result == APPLIED and event.sent_at > 0:
        metrics.EVENT_LAG.observe(max(0.0, timezone.now().timestamp() - event.sent_at))
    return result


# Segments of a batch held for their attempt's `completed` later in the batch, by (job pk, attempt),
# then by first sentence: only while none of the attempt is stored.
HeldSegments = dict[tuple[uuid.UUID, int], dict[int, AudioSegment]]


def _completed_follows(events: Sequence[JobEvent]) -> list[bool]:
    """For each event: whether a `completed` of the same job and attempt comes later in `events`."""
    follows: list[bool] = []
    completing: set[tuple[str, int]] = set()
    for event in reversed(events):
        follows.append((event.job_id, event.attempt) in completing)
        if isinstance(event, CompletedEvent):
            completing.add((event.job_id, event.attempt))
    return follows[::-1]


def _jobs_locked(job_ids: Sequence[str]) -> dict[str, SynthesisJob]:
    """The jobs named (an id that is no UUID names none), locked, by the ids as written; in key
    order, so two transactions locking several jobs never wait on each other in a cycle."""
    wanted: dict[uuid.UUID, list[str]] = {}
    for job_id in job_ids:
        try:
            wanted.setdefault(uuid.UUID(job_id), []).append(job_id)
        except ValueError:
            continue
    if not wanted:
        return {}
    # Not the text (up to 100,000 characters, read and decoded per event of a long job): only a
    # re-send of the job message needs it, and loads it then.
    query = SynthesisJob.objects.select_for_update().defer("text")
    # One id: no ORDER BY on a primary-key lookup (the model's default ordering would add one,
    # and compiling it cost a third of the query's Python time).
    one = len(wanted) == 1
    rows = query.filter(pk=next(iter(wanted))).order_by() if one else query.filter(pk__in=wanted).order_by("pk")
    return {job_id: job for job in rows for job_id in wanted[job.pk]}


def _column_values(job: SynthesisJob) -> dict[str, object]:
    """The row as last read or saved, to save only what an event changed (a file by its name)."""
    values: dict[str, object] = {}
    deferred = job.get_deferred_fields()  # never loaded, so never changed here: reading would load them
    for field in SynthesisJob._meta.concrete_fields:
        if field.attname in deferred:
            continue
        value = getattr(job, field.attname)
        values[field.attname] = value.name if isinstance(value, FieldFile) else value
    return values


def _job_save_changes(*, job: SynthesisJob, before: dict[str, object]) -> None:
    """One UPDATE of the columns that differ from `before` (the whole row costs a full write and
    the CPU to build it, per event)."""
    after = _column_values(job)
    changed = [name for name, value in after.items() if before.get(name, value) != value]
    if changed:
        job.save(update_fields=changed)


def _job_apply_locked(*, job: SynthesisJob | None, event: JobEvent, held: HeldSegments, hold: bool = False) -> str:
    """Apply `event` to its `job`, locked by the caller's transaction (None: no such job), in
    memory: the caller saves the row (`_job_save_changes`) before its transaction ends.
    `hold`: the attempt's `completed` follows in this transaction, so a segment may wait in
    `held` for it instead of being stored (see `job_apply_events`)."""
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
    if isinstance(event, StartedEvent):
        result = _apply_started(job=job, event=event)
    elif isinstance(event, PreviewEvent):
        result = _apply_preview(job=job, event=event, held=held)
    elif isinstance(event, SegmentEvent):
        result = _apply_segment(job=job, event=event, held=held, hold=hold)
    elif isinstance(event, CompletedEvent):
        result = _apply_completed(job=job, event=event, held=held)
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


def _apply_preview(*, job: SynthesisJob, event: PreviewEvent, held: HeldSegments) -> str:
    """Store the first chunks of the attempt's first sentence for its streams, unless a preview
    of the attempt is stored already or its first segment is there (the preview is then moot)."""
    if job.preview_stored or job.sentences_done or held.get((job.pk, event.attempt)):
        return DUPLICATE
    job_mark_running(job=job, event=event)  # like a segment, it proves an agent works on the job
    # Under the job's row lock and with `preview_stored` false no preview of the attempt is
    # stored (the end of an attempt deletes them with the flag): a plain insert cannot collide.
    AudioPreview.objects.create(job=job, attempt=event.attempt, sample_rate=event.sample_rate, pcm=event.pcm)
    job.preview_stored = True
    return APPLIED


def _apply_segment(*, job: SynthesisJob, event: SegmentEvent, held: HeldSegments, hold: bool) -> str:
    key = (job.pk, event.attempt)
    pending = held.get(key)
    if pending is None and hold and not job.sentences_done:  # none of the attempt is stored: hold them
        pending = held[key] = {}
    if pending is not None:
        if event.first_sentence in pending:
            return DUPLICATE
        job_mark_running(job=job, event=event)
        pending[event.first_sentence] = _segment_of(job=job, event=event)
        done = sum(segment.sentence_count for segment in pending.values())
        return _segment_progress(job=job, event=event, done=done)
    # No sentence done means no segment of this attempt is stored (each covers at least one
    # sentence, and a retry starts from zero with none): the first segment skips the lookup.
    if (
        job.sentences_done
        and AudioSegment.objects.filter(job=job, attempt=event.attempt, first_sentence=event.first_sentence).exists()
    ):
        return DUPLICATE  # a redelivered job replays the same sentences from the cache
    job_mark_running(job=job, event=event)  # the started event was lost: the segment proves it runs
    # No savepoint around the insert: only this consumer writes segments, under the job's row
    # lock taken above, so the check above cannot race. Should the unique constraint still
    # fire, the transaction fails and the consumer's retry finds the segment stored.
    segment_insert(_segment_of(job=job, event=event))  # PCM as binary, not a hex literal (pcm.py)
    if job.sentences_done == 0:  # no other segment of this attempt is stored: this one is all
        done = event.sentence_count
    else:
        done = AudioSegment.objects.filter(job=job, attempt=event.attempt).aggregate(n=Sum("sentence_count"))["n"] or 0
    return _segment_progress(job=job, event=event, done=done)


def _segment_of(*, job: SynthesisJob, event: SegmentEvent) -> AudioSegment:
    return AudioSegment(
        job=job,
        attempt=event.attempt,
        first_sentence=event.first_sentence,
        sentence_count=event.sentence_count,
        sample_rate=event.sample_rate,
        pcm=event.pcm,
        audio_seconds=event.audio_seconds,
        cached_sentences=event.cached_sentences,
    )


def _segment_progress(*, job: SynthesisJob, event: SegmentEvent, done: int) -> str:
    """The job after the new segment `event`: `done` sentences of the attempt received."""
    # New sentences are real progress: the stall budget is for jobs that stop moving, not for a
    # long job that hit several separate broker hiccups.
    job.stall_republishes = 0
    job.sentences_done = min(done, job.sentence_count) if job.sentence_count else done  # overlaps count once
    if job.sentence_count:
        job.progress = min(done / job.sentence_count, 0.99)  # 1.0 only once the file exists
    if job.first_segment_at is None:
        job.first_segment_at = event_time(event, not_before=job.started_at or job.queued_at)
        observe = partial(
            metrics.TIME_TO_FIRST_SEGMENT.labels(length_class=job.length_class).observe,
            job.time_to_first_segment_s or 0.0,
        )
        transaction.on_commit(observe, robust=True)  # once, however often a rolled-back batch is applied
    return APPLIED


def _apply_completed(*, job: SynthesisJob, event: CompletedEvent, held: HeldSegments) -> str:
    pending = held.pop((job.pk, event.attempt), None)  # then all of the attempt's segments
    if pending is None:
        chain = segment_chain(job=job, attempt=event.attempt, expected=event.sentence_count)
    else:
        chain = chain_of(pending.values(), expected=event.sentence_count)
    problem = chain.problem(expected=event.sentence_count)
    job_mark_running(job=job, event=event)
    if problem is not None:
        if pending:  # kept for the re-sent delivery, which completes the chain
            AudioSegment.objects.bulk_create(pending.values())
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
    # Held segments: none of the attempt is stored, and a retry (a new attempt) deleted the older ones.
    job_mark_succeeded(job=job, at=event_time(event, not_before=job.started_at), segments_stored=pending is None)
    # Counted and logged once committed: a consumer killed (or a batch rolled back) before the
    # commit applies the event again, and the log and the metrics must still name one success.
    summary = (
        f"{job.audio_duration_s:.2f}s of audio from {len(chain.segments)} segments, "
        f"{job.cached_sentences} cached sentences"
    )
    latency = partial(metrics.JOB_LATENCY.labels(length_class=job.length_class).observe, job.latency_s or 0.0)
    transaction.on_commit(latency, robust=True)
    transaction.on_commit(partial(logger.info, "job %s succeeded: %s", job.id, summary), robust=True)
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
        job = _jobs_locked([message.job_id]).get(message.job_id)
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
