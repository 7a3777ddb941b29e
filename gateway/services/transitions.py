"""The job state machine: one helper per move, the only code that sets `SynthesisJob.status`.

queued -> running -> succeeded | failed | cancelled; queued may also end directly. Every helper
changes the (locked, unsaved) row in memory; the caller saves it in its transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from tts_contracts import JobEvent

from .. import metrics, results
from ..errors import IllegalTransitionError
from ..models import ALLOWED_TRANSITIONS, AudioPreview, AudioSegment, JobStatus, SynthesisJob
from .notices import job_ended_notify

MAX_ERROR_CHARS = 2000


def job_transition(*, job: SynthesisJob, to: str) -> None:
    """Set `job.status` (unsaved) if the state machine allows it, else raise (409)."""
    if to not in ALLOWED_TRANSITIONS[job.status]:
        raise IllegalTransitionError(
            f"job {job.id} is {job.status}; it cannot become {to}", current=job.status, target=to
        )
    job.status = to


def event_time(event: JobEvent, *, not_before: datetime | None) -> datetime:
    """The agent's send time, kept between the job's previous timestamp and now (clock skew)."""
    now = timezone.now()
    if event.sent_at <= 0:
        return now
    at = min(datetime.fromtimestamp(event.sent_at, tz=UTC), now)
    return max(at, not_before) if not_before else at


def job_mark_running(*, job: SynthesisJob, event: JobEvent) -> None:
    """queued -> running, from the first event of the attempt that proves an agent works on it
    (normally `started`; a later event when `started` was lost). A running job is left as is."""
    if job.status == JobStatus.RUNNING:
        return
    job_transition(job=job, to=JobStatus.RUNNING)
    job.started_at = event_time(event, not_before=job.queued_at)
    job.agent_id = event.agent_id
    metrics.JOB_QUEUE_WAIT.labels(length_class=job.length_class).observe(job.queue_wait_s or 0.0)


def _previews_delete(job: SynthesisJob) -> None:
    """Drop the job's first-chunk previews when it ends: a retry (only of an ended job) finds none."""
    if job.preview_stored:
        AudioPreview.objects.filter(job=job).delete()
        job.preview_stored = False


def _job_end(
    *,
    job: SynthesisJob,
    status: str,
    error: str = "",
    code: str = "",
    at: datetime | None = None,
    segments_stored: bool = True,
) -> None:
    job_transition(job=job, to=status)
    job.finished_at = at or timezone.now()
    if error:
        job.error = error[:MAX_ERROR_CHARS]
    job.error_code = code
    if segments_stored:
        AudioSegment.objects.filter(job=job).delete()
    _previews_delete(job)
    length_class = job.length_class

    def count_finished() -> None:
        metrics.JOBS_FINISHED.labels(length_class=length_class, status=status).inc()

    transaction.on_commit(count_finished, robust=True)
    job_ended_notify(job=job)
    # The public final result and the notice that ends the job's open streams (SSE, audio),
    # whoever ended it: consumer, dead letter, watchdog, cancel from the API or the admin. Every
    # caller saves this (locked) object in the transaction, so at commit it holds the committed
    # row: the result is built from it, not read back.
    transaction.on_commit(partial(results.job_ended, job_id=job.id, job=job), robust=True)


def job_mark_succeeded(*, job: SynthesisJob, at: datetime | None = None, segments_stored: bool = True) -> None:
    """running -> succeeded; the caller has stored the audio. `segments_stored=False`: the
    caller knows no segment of the job is in the database (nothing to delete)."""
    _job_end(job=job, status=JobStatus.SUCCEEDED, at=at, segments_stored=segments_stored)


def job_mark_failed(*, job: SynthesisJob, code: str, error: str, at: datetime | None = None) -> None:
    """queued | running -> failed, with a stable `code` (tts_contracts.FAILURE_CODES) and a
    reason the job's owner can read."""
    _job_end(job=job, status=JobStatus.FAILED, error=error, code=code, at=at)


def job_mark_cancelled(*, job: SynthesisJob) -> None:
    """queued | running -> cancelled; later events of the attempt are ignored."""
    _job_end(job=job, status=JobStatus.CANCELLED, code="cancelled")


def job_mark_queued_again(*, job: SynthesisJob) -> None:
    """failed | cancelled -> queued as a new attempt (a retry is not a move back: events of the
    old attempt become stale)."""
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
    job.error = job.error_code = ""
    job.queued_at = timezone.now()
    job.started_at = job.first_segment_at = job.finished_at = None
    job.synthesis_seconds = None
    job.cached_sentences = 0
    job.agent_id = ""
    job.last_event_at = job.last_heartbeat_at = None
    job.stall_republishes = 0
    AudioSegment.objects.filter(job=job).delete()
    transaction.on_commit(partial(results.job_requeued, job_id=job.id), robust=True)
