"""Every write of the gateway: submitting, cancelling and retrying jobs, publishing the outbox,
applying agent events. The only module that changes `SynthesisJob.status`.

Functions are keyword-only and raise `ApplicationError` for anything a caller did wrong.
"""

from __future__ import annotations

import logging
import math
import tempfile
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from synthesis_agent.protocol import JobEvent, JobMessage, ProtocolError, decode_pcm16
from vits.errors import (
    EmptyTextError,
    InvalidTextError,
    ParameterError,
    UnknownSpeakerError,
    UnspeakableTextError,
    VitsInputError,
    VoiceNotFoundError,
)
from vits.params import SynthesisParams

from . import formats, metrics, voices
from .errors import ApplicationError, IllegalTransitionError
from .models import (
    ALLOWED_TRANSITIONS,
    AudioSegment,
    JobStatus,
    LengthClass,
    OutboxMessage,
    SynthesisJob,
)
from .publisher import PublishError, get_publisher
from .topics import job_topic

logger = logging.getLogger(__name__)

_PARAM_NAMES = frozenset(SynthesisParams.__dataclass_fields__)
_MAX_ERROR_CHARS = 2000

# --------------------------------------------------------------------------------------------
# Input validation (shared by submit, batch and /validate)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobInput:
    """Input that passed every check, ready to become a job."""

    text: str
    voice: str
    params: dict[str, Any]
    sentences: list[str]
    length_class: str
    sample_rate: int


def length_class_for(*, text: str) -> str:
    chars = len(text)
    if chars <= settings.TTS_SHORT_MAX_CHARS:
        return LengthClass.SHORT
    if chars <= settings.TTS_MEDIUM_MAX_CHARS:
        return LengthClass.MEDIUM
    return LengthClass.LONG


def _vits_error_code(error: VitsInputError) -> str:
    for error_type, code in (
        (EmptyTextError, "empty_text"),
        (UnspeakableTextError, "unspeakable_text"),
        (InvalidTextError, "invalid_text"),
        (UnknownSpeakerError, "unknown_speaker"),
        (ParameterError, "invalid_parameter"),
    ):
        if isinstance(error, error_type):
            return code
    return "invalid"


def job_input_validate(*, text: Any, voice: Any = None, params: Any = None, field_prefix: str = "") -> JobInput:
    """Check one job's input the way submit does; raise `ApplicationError` naming the field.

    Cheap checks first (presence, size), then the voice config, the parameter ranges and
    finally the text front end, which must find at least one speakable sentence.
    """
    if text is None:
        raise ApplicationError("text is required", code="required", field=f"{field_prefix}text")
    if not isinstance(text, str):
        raise ApplicationError("text must be a string", code="invalid_type", field=f"{field_prefix}text")
    if not text.strip():
        raise ApplicationError("text is empty", code="empty_text", field=f"{field_prefix}text")
    if len(text) > settings.TTS_MAX_TEXT_CHARS:
        raise ApplicationError(
            f"text has {len(text)} characters; the limit is {settings.TTS_MAX_TEXT_CHARS}",
            code="text_too_long",
            field=f"{field_prefix}text",
            status=413,
        )

    if voice is None or voice == "":
        voice = settings.TTS_DEFAULT_VOICE
    if not isinstance(voice, str):
        raise ApplicationError("voice must be a string", code="invalid_type", field=f"{field_prefix}voice")
    try:
        voice_info = voices.voice_get(voice_id=voice)
    except VoiceNotFoundError:
        raise ApplicationError(
            f"voice {voice!r} does not exist; GET /api/v1/voices lists the voices",
            code="unknown_voice",
            field=f"{field_prefix}voice",
        ) from None

    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApplicationError("params must be an object", code="invalid_type", field=f"{field_prefix}params")
    unknown = sorted(set(params) - _PARAM_NAMES)
    if unknown:
        raise ApplicationError(
            f"unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(_PARAM_NAMES))}",
            code="unknown_parameter",
            field=f"{field_prefix}params.{unknown[0]}",
        )
    try:
        synthesis_params = SynthesisParams.from_dict(params).validate(num_speakers=voice_info.num_speakers)
    except VitsInputError as error:
        raise ApplicationError(
            str(error), code=_vits_error_code(error), field=f"{field_prefix}params.{error.field}"
        ) from None

    try:
        sentences = voices.text_sentences(text=text)
    except VitsInputError as error:
        raise ApplicationError(str(error), code=_vits_error_code(error), field=f"{field_prefix}{error.field}") from None
    if not sentences:
        raise ApplicationError(
            "text has nothing that can be spoken", code="unspeakable_text", field=f"{field_prefix}text"
        )

    return JobInput(
        text=text,
        voice=voice_info.id,
        params={key: value for key, value in synthesis_params.to_dict().items() if value is not None},
        sentences=sentences,
        length_class=length_class_for(text=text),
        sample_rate=int(voice_info.sample_rate),
    )


# --------------------------------------------------------------------------------------------
# Submitting, cancelling, retrying
# --------------------------------------------------------------------------------------------


def job_transition(*, job: SynthesisJob, to: str) -> None:
    """Set `job.status` (unsaved) if the state machine allows it, else raise (409)."""
    if to not in ALLOWED_TRANSITIONS[job.status]:
        raise IllegalTransitionError(
            f"job {job.id} is {job.status}; it cannot become {to}", current=job.status, target=to
        )
    job.status = to


def _outbox_create(*, job: SynthesisJob) -> OutboxMessage:
    """The job message of the job's current attempt, published after the transaction commits."""
    message = JobMessage(
        job_id=str(job.id),
        attempt=job.attempt,
        text=job.text,
        voice=job.voice,
        length_class=job.length_class,
        params=dict(job.params),
        submitted_at=job.queued_at.timestamp(),
    )
    record = OutboxMessage.objects.create(
        job=job,
        attempt=job.attempt,
        topic=job_topic(length_class=job.length_class),
        partition_key=str(job.id),
        payload=message.to_bytes().decode("utf-8"),
    )
    # Like Zulip's queue_event_on_commit: agents never see a job the database rolled back.
    # robust: a failure after commit is logged, never turned into a 500 for an accepted job.
    transaction.on_commit(partial(outbox_publish, message_id=record.pk, respect_backoff=True), robust=True)
    return record


def _job_create(*, owner: AbstractBaseUser, job_input: JobInput) -> SynthesisJob:
    job = SynthesisJob.objects.create(
        owner=owner,
        text=job_input.text,
        voice=job_input.voice,
        params=job_input.params,
        length_class=job_input.length_class,
        sentence_count=len(job_input.sentences),
        sample_rate=job_input.sample_rate,
    )
    _outbox_create(job=job)
    transaction.on_commit(partial(metrics.JOBS_SUBMITTED.labels(length_class=job.length_class).inc), robust=True)
    return job


def job_submit(*, owner: AbstractBaseUser, text: Any, voice: Any = None, params: Any = None) -> SynthesisJob:
    """Validate, then write the job and its outbox record in one transaction."""
    job_input = job_input_validate(text=text, voice=voice, params=params)
    with transaction.atomic():
        job = _job_create(owner=owner, job_input=job_input)
    logger.info("job %s submitted: %s, %d chars, voice %s", job.id, job.length_class, len(job.text), job.voice)
    return job


def job_submit_batch(*, owner: AbstractBaseUser, items: Any) -> list[SynthesisJob]:
    """All or nothing: every item is validated before any job is written."""
    if not isinstance(items, list) or not items:
        raise ApplicationError("jobs must be a non-empty list", code="invalid", field="jobs")
    if len(items) > settings.TTS_MAX_BATCH:
        raise ApplicationError(
            f"a batch holds at most {settings.TTS_MAX_BATCH} jobs, got {len(items)}",
            code="batch_too_large",
            field="jobs",
            status=413,
        )
    total_chars = sum(
        len(item["text"]) for item in items if isinstance(item, dict) and isinstance(item.get("text"), str)
    )
    if total_chars > settings.TTS_MAX_BATCH_CHARS:
        raise ApplicationError(
            f"a batch holds at most {settings.TTS_MAX_BATCH_CHARS} characters of text, got {total_chars}",
            code="batch_too_large",
            field="jobs",
            status=413,
        )
    inputs = []
    for index, item in enumerate(items):
        prefix = f"jobs[{index}]."
        if not isinstance(item, dict):
            raise ApplicationError("each job must be an object", code="invalid_type", field=f"jobs[{index}]")
        inputs.append(
            job_input_validate(
                text=item.get("text"), voice=item.get("voice"), params=item.get("params"), field_prefix=prefix
            )
        )
    with transaction.atomic():
        jobs = [_job_create(owner=owner, job_input=job_input) for job_input in inputs]
    logger.info("batch of %d jobs submitted by user %s", len(jobs), owner.pk)
    return jobs


def _segments_delete(*, job: SynthesisJob) -> None:
    AudioSegment.objects.filter(job=job).delete()


def _job_finish(*, job: SynthesisJob, status: str, error: str = "", at: datetime | None = None) -> None:
    job_transition(job=job, to=status)
    job.finished_at = at or timezone.now()
    if error:
        job.error = error[:_MAX_ERROR_CHARS]
    _segments_delete(job=job)
    transaction.on_commit(
        partial(metrics.JOBS_FINISHED.labels(length_class=job.length_class, status=status).inc), robust=True
    )


def job_cancel(*, job: SynthesisJob) -> SynthesisJob:
    """Cancel a queued or running job; later events of the job are ignored."""
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().get(pk=job.pk)
        _job_finish(job=job, status=JobStatus.CANCELLED)
        job.save()
    logger.info("job %s cancelled", job.id)
    return job


def job_retry(*, job: SynthesisJob) -> SynthesisJob:
    """Run a failed or cancelled job again as a new attempt; events of older attempts become stale."""
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().get(pk=job.pk)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise IllegalTransitionError(
                f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried",
                current=job.status,
                target=JobStatus.QUEUED,
            )
        job.attempt += 1
        job.status = JobStatus.QUEUED
        job.progress = 0.0
        job.sentences_done = 0
        job.error = ""
        job.queued_at = timezone.now()
        job.started_at = job.first_segment_at = job.finished_at = None
        job.synthesis_seconds = None
        job.cached_sentences = 0
        job.agent_id = ""
        job.last_event_at = None
        job.stall_republishes = 0
        job.save()
        _segments_delete(job=job)
        _outbox_create(job=job)
    logger.info("job %s retried as attempt %d", job.id, job.attempt)
    return job


def job_delete(*, job: SynthesisJob) -> None:
    """Delete the job, its outbox records and segments, and its audio file once committed."""
    job_id, audio_name, storage = job.pk, job.audio.name, job.audio.storage
    with transaction.atomic():
        job.delete()
        if audio_name:
            transaction.on_commit(partial(storage.delete, audio_name), robust=True)
            transaction.on_commit(partial(formats.encoded_delete, audio_name=audio_name, storage=storage), robust=True)
    logger.info("job %s deleted", job_id)


# --------------------------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayResult:
    published: int
    failed: int
    skipped: int
    backlog: int


def outbox_publish(*, message_id: int, respect_backoff: bool = False) -> bool:
    """Publish one outbox record and mark it confirmed; False if it was not published now.

    The row lock (skip_locked) keeps the after-commit publish and the relay from sending the
    same record at the same moment. A failure is recorded on the row and left to the relay.
    """
    with transaction.atomic():
        record = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, published_at__isnull=True)
            .first()
        )
        if record is None:
            return False  # confirmed already, or another process is publishing it
        record.attempts += 1
        record.last_attempt_at = timezone.now()
        try:
            get_publisher().send(
                topic=record.topic,
                payload=record.payload.encode("utf-8"),
                partition_key=record.partition_key,
                respect_backoff=respect_backoff,
            )
        except PublishError as error:
            record.last_error = str(error)[:_MAX_ERROR_CHARS]
            record.save(update_fields=["attempts", "last_attempt_at", "last_error"])
            metrics.OUTBOX_PUBLISHED.labels(result="error").inc()
            logger.warning(
                "job %s attempt %d not published to %s (outbox %s, try %d): %s; the relay will retry",
                record.job_id,
                record.attempt,
                record.topic,
                record.pk,
                record.attempts,
                error,
            )
            return False
        record.published_at = timezone.now()
        record.last_error = ""
        record.save(update_fields=["attempts", "last_attempt_at", "last_error", "published_at"])
    metrics.OUTBOX_PUBLISHED.labels(result="ok").inc()
    logger.debug("job %s attempt %d published to %s", record.job_id, record.attempt, record.topic)
    return True


def outbox_relay_pending(*, older_than_s: float | None = None, limit: int | None = None) -> RelayResult:
    """Publish outbox records left unconfirmed (broker down at submit); stop at the first failure.

    Records of jobs that already ended, or of an attempt a retry replaced, are closed without
    publishing: no agent should synthesize them.
    """
    older_than_s = settings.TTS_OUTBOX_RELAY_AFTER_S if older_than_s is None else older_than_s
    limit = settings.TTS_OUTBOX_RELAY_BATCH if limit is None else limit
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    pending = list(
        OutboxMessage.objects.filter(published_at__isnull=True, created_at__lte=cutoff)
        .filter(Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lte=cutoff))
        .select_related("job")
        .order_by("created_at")[:limit]
    )
    published = failed = skipped = 0
    for record in pending:
        job = record.job
        if job.is_final or job.attempt != record.attempt:
            OutboxMessage.objects.filter(pk=record.pk, published_at__isnull=True).update(
                published_at=timezone.now(),
                last_error=f"not published: job is {job.status} (attempt {job.attempt})",
            )
            skipped += 1
            continue
        if outbox_publish(message_id=record.pk):
            published += 1
        else:
            failed += 1
            break  # the broker is most likely down: the next round tries again
    backlog = OutboxMessage.objects.filter(published_at__isnull=True).count()
    metrics.OUTBOX_BACKLOG.set(backlog)
    if published or failed:
        logger.info("outbox relay: %d published, %d failed, %d backlog", published, failed, backlog)
    return RelayResult(published=published, failed=failed, skipped=skipped, backlog=backlog)


# --------------------------------------------------------------------------------------------
# Stalled-job watchdog
# --------------------------------------------------------------------------------------------


def _stalled_running_jobs(*, cutoff: datetime) -> QuerySet[SynthesisJob]:
    """Running jobs with no event (nor republish) since `cutoff`; `started_at` if none came yet."""
    return (
        SynthesisJob.objects.filter(status=JobStatus.RUNNING)
        .annotate(quiet_since=Coalesce("last_event_at", "started_at"))
        .filter(quiet_since__lte=cutoff)
    )


def job_republish_stalled(*, stalled_after_s: float, now: datetime | None = None, limit: int = 100) -> int:
    """Re-publish the job message of running jobs silent for `stalled_after_s`; return how many.

    The broker can lose an event it confirmed (a `completed` never delivered leaves the job
    running forever). The same attempt is re-published: an agent replays the finished sentences
    from its cache and the repeated events apply idempotently. `last_event_at` is bumped, so a
    job is re-published at most once per `stalled_after_s`; after TTS_MAX_STALL_REPUBLISHES of
    one attempt the job is failed. Queued jobs are left alone: they may wait behind a backlog.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stalled_after_s)
    job_ids = list(_stalled_running_jobs(cutoff=cutoff).order_by("quiet_since").values_list("pk", flat=True)[:limit])
    republished = 0
    for job_id in job_ids:
        with transaction.atomic():
            # skip_locked: the consumer holds the row while applying an event (the job is alive);
            # the filter again: an event may have arrived since the query above.
            job = _stalled_running_jobs(cutoff=cutoff).select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None:
                continue
            silent_s = (now - job.quiet_since).total_seconds()
            if job.stall_republishes >= settings.TTS_MAX_STALL_REPUBLISHES:
                _job_finish(
                    job=job,
                    status=JobStatus.FAILED,
                    error=(
                        f"synthesis stalled: no progress for {silent_s:.0f} s after {job.stall_republishes} retries"
                    ),
                    at=now,
                )
                job.save()
                logger.error(
                    "job %s attempt %d stalled: silent for %.0f s after %d republishes; marked failed",
                    job.id,
                    job.attempt,
                    silent_s,
                    job.stall_republishes,
                )
                continue
            job.stall_republishes += 1
            job.last_event_at = now
            job.save(update_fields=["stall_republishes", "last_event_at"])
            _outbox_create(job=job)
        republished += 1
        metrics.JOBS_REPUBLISHED.labels(length_class=job.length_class).inc()
        logger.warning(
            "job %s attempt %d silent for %.0f s: job message re-published (%d of %d)",
            job.id,
            job.attempt,
            silent_s,
            job.stall_republishes,
            settings.TTS_MAX_STALL_REPUBLISHES,
        )
    return republished


# --------------------------------------------------------------------------------------------
# Agent events
# --------------------------------------------------------------------------------------------


class EventNotReadyError(Exception):
    """The event cannot be applied yet (segments still missing); redeliver it later."""


APPLIED, DUPLICATE, STALE, INVALID = "applied", "duplicate", "stale", "invalid"


def _event_time(event: JobEvent, *, not_before: datetime | None) -> datetime:
    """The agent's send time, kept between the job's previous timestamp and now (clock skew)."""
    now = timezone.now()
    if event.sent_at <= 0:
        return now
    at = min(datetime.fromtimestamp(event.sent_at, tz=UTC), now)
    return max(at, not_before) if not_before else at


def _int(data: dict[str, Any], key: str, *, minimum: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProtocolError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _job_start(*, job: SynthesisJob, event: JobEvent) -> None:
    job_transition(job=job, to=JobStatus.RUNNING)
    job.started_at = _event_time(event, not_before=job.queued_at)
    metrics.JOB_QUEUE_WAIT.labels(length_class=job.length_class).observe(job.queue_wait_s or 0.0)


def job_apply_event(*, event: JobEvent, wait_for_segments: bool = False) -> str:
    """Apply one agent event to its job; return applied / duplicate / stale / invalid.

    Idempotent: replays and redeliveries leave the job as the first delivery did. Events of an
    older attempt are stale; events of a job that already ended change nothing. A `completed`
    whose segments are not all stored fails the job, or raises `EventNotReadyError` when
    `wait_for_segments` (the consumer redelivers it while segments may still arrive).
    """
    result = _job_apply_event(event=event, wait_for_segments=wait_for_segments)
    metrics.EVENTS_APPLIED.labels(type=event.type, result=result).inc()
    if result == APPLIED and event.sent_at > 0:
        metrics.EVENT_LAG.observe(max(0.0, timezone.now().timestamp() - event.sent_at))
    return result


def _job_apply_event(*, event: JobEvent, wait_for_segments: bool) -> str:
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().filter(pk=_uuid_or_none(event.job_id)).first()
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
        try:
            handler = _EVENT_HANDLERS[event.type]
            result = handler(job=job, event=event, wait_for_segments=wait_for_segments)
        except ProtocolError as error:
            logger.warning("job %s: invalid %s event from %s: %s", job.id, event.type, event.agent_id, error)
            return INVALID
        # Any event of the current attempt, a duplicate too, proves an agent works on the job:
        # the stalled-job watchdog measures silence from here (consumer clock, not the agent's).
        SynthesisJob.objects.filter(pk=job.pk).update(last_event_at=timezone.now())
        return result


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _apply_started(*, job: SynthesisJob, event: JobEvent, wait_for_segments: bool) -> str:
    data = event.data
    sentence_count = data.get("sentence_count")
    sample_rate = data.get("sample_rate")
    if job.status == JobStatus.RUNNING:
        if job.agent_id == event.agent_id:
            return DUPLICATE
        # Redelivered to another agent (the first one crashed): same attempt, new worker.
        logger.info("job %s restarted by agent %s (was %s)", job.id, event.agent_id, job.agent_id)
        job.agent_id = event.agent_id[:200]
        job.save(update_fields=["agent_id"])
        return APPLIED
    _job_start(job=job, event=event)
    job.agent_id = event.agent_id[:200]
    if isinstance(sentence_count, int) and sentence_count > 0:
        job.sentence_count = sentence_count
    if isinstance(sample_rate, int) and sample_rate > 0:
        job.sample_rate = sample_rate
    job.save()
    return APPLIED


def _apply_segment(*, job: SynthesisJob, event: JobEvent, wait_for_segments: bool) -> str:
    data = event.data
    first_sentence = _int(data, "first_sentence")
    sentence_count = _int(data, "sentence_count", minimum=1)
    sample_rate = _int(data, "sample_rate", minimum=1)
    pcm = decode_pcm16(str(data.get("audio_b64", "")))
    if len(pcm) % 2:
        raise ProtocolError("segment audio has an odd number of bytes for 16-bit PCM")
    if AudioSegment.objects.filter(job=job, attempt=event.attempt, first_sentence=first_sentence).exists():
        return DUPLICATE  # a redelivered job replays the same sentences from the cache
    if job.status == JobStatus.QUEUED:  # the started event was lost: the segment proves it runs
        _job_start(job=job, event=event)
        job.agent_id = event.agent_id[:200]
    try:
        with transaction.atomic():
            AudioSegment.objects.create(
                job=job,
                attempt=event.attempt,
                first_sentence=first_sentence,
                sentence_count=sentence_count,
                sample_rate=sample_rate,
                pcm=pcm,
                audio_seconds=len(pcm) / 2 / sample_rate,
                cached_sentences=int(data.get("cached_sentences") or 0),
            )
    except IntegrityError:
        return DUPLICATE
    # New sentences are real progress: the stall budget is for jobs that stop moving, not for a
    # long job that hit several separate broker hiccups.
    job.stall_republishes = 0
    done = AudioSegment.objects.filter(job=job, attempt=event.attempt).aggregate(n=Sum("sentence_count"))["n"] or 0
    job.sentences_done = min(done, job.sentence_count) if job.sentence_count else done  # overlaps count once
    if job.sentence_count:
        job.progress = min(done / job.sentence_count, 0.99)  # 1.0 only once the file exists
    if job.first_segment_at is None:
        job.first_segment_at = _event_time(event, not_before=job.started_at or job.queued_at)
        metrics.TIME_TO_FIRST_SEGMENT.labels(length_class=job.length_class).observe(job.time_to_first_segment_s or 0.0)
    job.save()
    return APPLIED


def _wav_file(*, segments: list[AudioSegment], sample_rate: int) -> tuple[File, int]:
    """The WAV of `segments` (in order) in a temporary file; PCM is read one segment at a time
    so a long job's audio is never held in memory whole. Returns the file and its frame count."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
    frames = 0
    with wave.open(spool, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        for segment in segments:
            pcm = AudioSegment.objects.values_list("pcm", flat=True).get(pk=segment.pk)
            wav.writeframes(bytes(pcm))
            frames += len(pcm) // 2
    spool.seek(0)
    return File(spool), frames


def _apply_completed(*, job: SynthesisJob, event: JobEvent, wait_for_segments: bool) -> str:
    data = event.data
    stored = {
        segment.first_sentence: segment
        for segment in AudioSegment.objects.filter(job=job, attempt=event.attempt).defer("pcm")
    }
    expected_total = data.get("sentence_count") or job.sentence_count or 0
    # Walk the chain 0 -> 0 + count -> ...: every sentence exactly once, in order, even if two
    # deliveries cut their segments differently (a stored segment off the chain is left out).
    segments: list[AudioSegment] = []
    covered = 0
    while covered in stored and covered < expected_total:
        segments.append(stored[covered])
        covered += stored[covered].sentence_count
    sample_rates = {segment.sample_rate for segment in segments}
    if not segments or covered != expected_total or len(sample_rates) != 1:
        problem = f"audio incomplete: {covered} of {expected_total} sentences received"
        if len(sample_rates) > 1:
            problem = f"segments disagree on the sample rate: {sorted(sample_rates)}"
        if wait_for_segments and len(sample_rates) <= 1:
            raise EventNotReadyError(f"job {job.id}: {problem}")
        logger.error("job %s attempt %d failed on completion: %s", job.id, event.attempt, problem)
        if job.status == JobStatus.QUEUED:
            _job_start(job=job, event=event)
        _job_finish(job=job, status=JobStatus.FAILED, error=f"synthesis failed: {problem}")
        job.save()
        return APPLIED

    if job.status == JobStatus.QUEUED:
        _job_start(job=job, event=event)
    sample_rate = sample_rates.pop()
    wav_file, frames = _wav_file(segments=segments, sample_rate=sample_rate)
    with wav_file:
        job.audio.save(f"{job.id}.wav", wav_file, save=False)
    try:
        job.sample_rate = sample_rate
        job.audio_duration_s = frames / sample_rate
        job.sentence_count = covered
        job.sentences_done = covered
        job.progress = 1.0
        job.synthesis_seconds = _float_or_none(data.get("synthesis_seconds"))
        job.cached_sentences = sum(segment.cached_sentences for segment in segments)
        if isinstance(data.get("cached_sentences"), int):
            job.cached_sentences = data["cached_sentences"]
        job.agent_id = event.agent_id[:200] or job.agent_id
        _job_finish(job=job, status=JobStatus.SUCCEEDED, at=_event_time(event, not_before=job.started_at))
        job.save()
    except Exception:
        job.audio.storage.delete(job.audio.name)  # no orphan file when the row is not updated
        raise
    metrics.JOB_LATENCY.labels(length_class=job.length_class).observe(job.latency_s or 0.0)
    logger.info(
        "job %s succeeded: %.2fs of audio from %d segments, %d cached sentences",
        job.id,
        job.audio_duration_s,
        len(segments),
        job.cached_sentences,
    )
    return APPLIED


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _apply_failed(*, job: SynthesisJob, event: JobEvent, wait_for_segments: bool) -> str:
    reason = str(event.data.get("reason") or "synthesis failed")
    if job.status == JobStatus.QUEUED:
        _job_start(job=job, event=event)
    _job_finish(job=job, status=JobStatus.FAILED, error=reason)
    job.save()
    logger.warning(
        "job %s attempt %d failed on agent %s: %s (%s)",
        job.id,
        event.attempt,
        event.agent_id,
        reason,
        event.data.get("error_type", ""),
    )
    return APPLIED


_EVENT_HANDLERS = {
    "started": _apply_started,
    "segment": _apply_segment,
    "completed": _apply_completed,
    "failed": _apply_failed,
}


def job_fail_dead_letter(*, message: JobMessage) -> str:
    """A job message the agents gave up on (dead-letter topic): fail the job with a readable reason."""
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().filter(pk=_uuid_or_none(message.job_id)).first()
        if job is None:
            result = INVALID
        elif message.attempt != job.attempt:
            result = STALE
        elif job.is_final:
            result = DUPLICATE if job.status == JobStatus.FAILED else STALE
        else:
            _job_finish(
                job=job,
                status=JobStatus.FAILED,
                error=f"synthesis failed after {settings.TTS_MAX_ATTEMPTS} attempts",
            )
            job.save()
            logger.error("job %s attempt %d dead-lettered: marked failed", job.id, job.attempt)
            result = APPLIED
    metrics.EVENTS_APPLIED.labels(type="dead_letter", result=result).inc()
    return result
