"""Retention: finished jobs and their audio are deleted TTS_RETENTION_DAYS after they finish.

A job that has not finished never expires (the watchdog and the agents still own it).
`manage.py purge_expired` runs one purge; the event consumer runs one every
TTS_RETENTION_INTERVAL_S in a housekeeping thread (`start_retention_thread`). The same purge
deletes `Idempotency-Key` records past TTS_IDEMPOTENCY_KEY_TTL_HOURS.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from . import services
from .models import FINAL_STATUSES, SynthesisJob

logger = logging.getLogger(__name__)


def job_expires_at(*, job: SynthesisJob, retention_days: float | None = None) -> datetime | None:
    days = settings.TTS_RETENTION_DAYS if retention_days is None else retention_days
    if days <= 0 or job.status not in FINAL_STATUSES or job.finished_at is None:
        return None
    return job.finished_at + timedelta(days=days)


def jobs_purge_expired(*, retention_days: float, now: datetime | None = None, batch_size: int = 500) -> int:
    """Delete every finished job older than `retention_days`, with its audio file; return the count.

    Row by row through `services.job_delete`, which removes the file after the row's commit,
    so a crash never leaves a row pointing at a deleted file.
    """
    if retention_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    deleted = 0
    while True:
        expired = list(
            SynthesisJob.objects.filter(status__in=FINAL_STATUSES, finished_at__lt=cutoff).order_by("finished_at")[
                :batch_size
            ]
        )
        for job in expired:
            services.job_delete(job=job)
        deleted += len(expired)
        if len(expired) < batch_size:
            break
    if deleted:
        logger.info("retention: deleted %d jobs finished before %s", deleted, cutoff.isoformat())
    return deleted


def _purge_forever(*, stop: threading.Event, interval_s: float) -> None:
    # The first purge a minute after start (not at once: a restart loop must not hammer the
    # database), then every interval, so frequent restarts still purge.
    delay = min(60.0, interval_s)
    while not stop.wait(delay):
        delay = interval_s
        try:
            close_old_connections()
            jobs_purge_expired(retention_days=settings.TTS_RETENTION_DAYS)
            services.idempotency_keys_purge_expired()
        except Exception:
            logger.exception("retention purge failed; retrying in %.0fs", interval_s)
    connections.close_all()


def start_retention_thread(*, stop: threading.Event, interval_s: float) -> threading.Thread | None:
    """The consumer's housekeeping thread: a purge every `interval_s` (0 = off) until `stop`."""
    if interval_s <= 0 or (settings.TTS_RETENTION_DAYS <= 0 and settings.TTS_IDEMPOTENCY_KEY_TTL_HOURS <= 0):
        return None
    thread = threading.Thread(
        target=_purge_forever, kwargs={"stop": stop, "interval_s": interval_s}, name="retention", daemon=True
    )
    thread.start()
    return thread
