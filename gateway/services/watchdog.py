"""The stalled-job watchdog: re-send the job message of jobs whose agent went silent."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import metrics
from ..models import JobStatus, SynthesisJob
from .outbox import outbox_create
from .transitions import job_mark_failed

logger = logging.getLogger(__name__)


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
                error = f"synthesis stalled: no progress for {silent_s:.0f} s after {job.stall_republishes} retries"
                job_mark_failed(job=job, error=error, at=now)
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
            outbox_create(job=job)
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
