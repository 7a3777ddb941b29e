"""The stalled-job watchdog: re-send the job message of jobs nobody is known to hold."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import metrics
from ..models import JobStatus, SynthesisJob
from .outbox import outbox_create
from .transitions import job_mark_failed

logger = logging.getLogger(__name__)


def job_republish_stalled(
    *,
    stalled_after_s: float,
    queued_after_s: float | None = None,
    overtaken_after_s: float | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Re-send the job message of jobs nobody is known to hold; return how many were re-sent.

    Running jobs: the agent holding a job sends a heartbeat every few seconds, paused or not, and
    every event sets `last_event_at`; a running job silent for `stalled_after_s` has lost its
    holder (crash, hang) or its events (the broker can lose what it confirmed). The same attempt
    is re-sent: an agent claims it, replays the finished sentences from its cache and the
    repeated events apply idempotently. At most one re-send per `stalled_after_s`. The job fails
    as `stalled` after TTS_MAX_STALL_REPUBLISHES re-sends that went unanswered for at least
    TTS_STALLED_JOB_FAIL_AFTER_S in all: a re-sent message waits behind its class's backlog.

    Queued jobs with no event for `queued_after_s` (default TTS_QUEUED_JOB_RESEND_AFTER_S, 0 =
    off): their message may have been lost before any agent took it. They are re-sent once per
    period and never failed (a backlog is not a fault); a duplicate costs an agent only a claim
    check.

    Queued jobs overtaken (`overtaken_after_s`, default TTS_QUEUED_JOB_OVERTAKEN_S, 0 = off): a
    job of the same class and voice (the same topic) queued after this one's message went out
    has been running for that long, while this one has had no event. Agents take a topic's
    messages in order, so its message is held by an agent that died with it in its receive
    queue (pulsar-lite did not hand such messages on when the other agent was busy), or is
    lost. Re-sent after seconds instead of TTS_QUEUED_JOB_RESEND_AFTER_S. A job that only
    waits in a busy agent's receive queue is re-sent too: whichever agent claims it first runs
    it, and the other copy costs a claim check.
    """
    now = now or timezone.now()
    queued_after_s = settings.TTS_QUEUED_JOB_RESEND_AFTER_S if queued_after_s is None else queued_after_s
    if overtaken_after_s is None:
        overtaken_after_s = settings.TTS_QUEUED_JOB_OVERTAKEN_S
    # Re-sends are at least `stalled_after_s` apart, so this many of them span the fail-after time.
    fail_after = max(
        settings.TTS_MAX_STALL_REPUBLISHES, math.ceil(settings.TTS_STALLED_JOB_FAIL_AFTER_S / stalled_after_s)
    )
    resent = _resend_silent(
        jobs=lambda: _silent_jobs(
            status=JobStatus.RUNNING, since="started_at", cutoff=now - timedelta(seconds=stalled_after_s)
        ),
        now=now,
        limit=limit,
        fail_after=fail_after,
    )
    if queued_after_s > 0:
        resent += _resend_silent(
            jobs=lambda: _silent_jobs(
                status=JobStatus.QUEUED, since="queued_at", cutoff=now - timedelta(seconds=queued_after_s)
            ),
            now=now,
            limit=limit,
            fail_after=None,
        )
    if overtaken_after_s > 0:
        resent += _resend_silent(
            jobs=lambda: _overtaken_jobs(cutoff=now - timedelta(seconds=overtaken_after_s)),
            now=now,
            limit=limit,
            fail_after=None,
        )
    return resent


def _silent_jobs(*, status: str, since: str, cutoff: datetime) -> QuerySet[SynthesisJob]:
    """Jobs in `status` with no event (nor re-send) since `cutoff`; `since` if none came yet."""
    return (
        SynthesisJob.objects.filter(status=status)
        .annotate(quiet_since=Coalesce("last_event_at", since))
        .filter(quiet_since__lte=cutoff)
    )


def _overtaken_jobs(*, cutoff: datetime) -> QuerySet[SynthesisJob]:
    """Queued jobs silent since `cutoff` that a later job of their topic overtook by then."""
    later_and_started = SynthesisJob.objects.filter(
        length_class=OuterRef("length_class"),
        voice=OuterRef("voice"),
        queued_at__gt=OuterRef("quiet_since"),  # after the job's last message went out
        started_at__lte=cutoff,
    )
    return _silent_jobs(status=JobStatus.QUEUED, since="queued_at", cutoff=cutoff).filter(Exists(later_and_started))


def _resend_silent(
    *, jobs: Callable[[], QuerySet[SynthesisJob]], now: datetime, limit: int, fail_after: int | None
) -> int:
    """Re-send each silent job; `fail_after` re-sends fail it as stalled (None: never)."""
    job_ids = list(jobs().order_by("quiet_since").values_list("pk", flat=True)[:limit])
    resent = 0
    for job_id in job_ids:
        with transaction.atomic():
            # skip_locked: the consumer holds the row while applying an event (the job is alive);
            # the filter again: an event may have arrived since the query above.
            job = jobs().select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None:
                continue
            silent_s = (now - job.quiet_since).total_seconds()
            if fail_after is not None and job.stall_republishes >= fail_after:
                error = f"synthesis stalled: no progress for {silent_s:.0f} s after {job.stall_republishes} retries"
                job_mark_failed(job=job, code="stalled", error=error, at=now)
                job.save()
                logger.error(
                    "job %s attempt %d stalled: silent for %.0f s after %d republishes; marked failed",
                    job.id,
                    job.attempt,
                    silent_s,
                    job.stall_republishes,
                )
                continue
            if fail_after is not None:
                job.stall_republishes += 1
            job.last_event_at = now
            job.save(update_fields=["stall_republishes", "last_event_at"])
            outbox_create(job=job)
        resent += 1
        metrics.JOBS_REPUBLISHED.labels(length_class=job.length_class).inc()
        logger.warning(
            "job %s attempt %d silent for %.0f s while %s: job message re-published (re-send %d, fails after %d)",
            job.id,
            job.attempt,
            silent_s,
            job.status,
            job.stall_republishes,
            fail_after or 0,
        )
    return resent
