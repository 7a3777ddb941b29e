"""The transactional outbox: a job message is written with the job and published after commit;
the relay publishes what a broker outage left unconfirmed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from tts_contracts import JobMessage

from .. import metrics
from ..models import OutboxMessage, SynthesisJob
from ..publisher import PublishError, get_publisher, job_topic
from .transitions import MAX_ERROR_CHARS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayResult:
    published: int
    failed: int
    skipped: int
    backlog: int


def outbox_create(*, job: SynthesisJob) -> OutboxMessage:
    """The job message of the job's current attempt, published after the transaction commits.

    The record is written already held by that publish (its first attempt, at its creation):
    the relay leaves it alone for TTS_OUTBOX_RELAY_AFTER_S as if the publish had taken it with
    `outbox_publish`'s conditional UPDATE, and the submit saves that round trip.
    """
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
        topic=job_topic(length_class=job.length_class, voice=job.voice),
        partition_key=str(job.id),
        payload=message.to_bytes().decode("utf-8"),
        attempts=1,
        last_attempt_at=timezone.now(),
    )

    # A named function (not a partial): Django logs a failing robust callback by its
    # __qualname__, which a partial lacks. Agents never see a job the database rolled back, and
    # a failure after commit is logged, never turned into an error for an accepted job.
    def publish_after_commit() -> None:
        _send_and_confirm(record=record, respect_backoff=True)

    transaction.on_commit(publish_after_commit, robust=True)
    return record


def outbox_publish(*, record: OutboxMessage, respect_backoff: bool = False, retry_after_s: float | None = None) -> bool:
    """Publish one outbox record and mark it confirmed; False if it was not published now.

    An attempt first takes the record with one conditional UPDATE (unconfirmed, and no attempt
    within the relay's wait), which keeps the relay and another process from sending it at the
    same moment without holding a row lock (or a transaction) across the broker's round trip.
    An attempt holds the record for `retry_after_s` (TTS_OUTBOX_RELAY_AFTER_S by default). A
    failure is recorded on the row and left to the relay.
    """
    now = timezone.now()
    held_since = now - timedelta(seconds=settings.TTS_OUTBOX_RELAY_AFTER_S if retry_after_s is None else retry_after_s)
    taken = (
        OutboxMessage.objects.filter(pk=record.pk, published_at__isnull=True)
        .filter(Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lte=held_since))
        .update(attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if not taken:
        return False  # confirmed already, or another process is publishing it
    record.attempts += 1
    record.last_attempt_at = now
    return _send_and_confirm(record=record, respect_backoff=respect_backoff)


def _send_and_confirm(*, record: OutboxMessage, respect_backoff: bool) -> bool:
    """Send a record this process holds (taken by `outbox_publish`, or held since `outbox_create`)."""
    try:
        get_publisher().send(
            topic=record.topic,
            payload=record.payload.encode("utf-8"),
            partition_key=record.partition_key,
            respect_backoff=respect_backoff,
        )
    except PublishError as error:
        record.last_error = str(error)[:MAX_ERROR_CHARS]
        OutboxMessage.objects.filter(pk=record.pk).update(last_error=record.last_error)
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
    OutboxMessage.objects.filter(pk=record.pk).update(published_at=record.published_at, last_error="")
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
        if outbox_publish(record=record, retry_after_s=older_than_s):
            published += 1
        else:
            failed += 1
            break  # the broker is most likely down: the next round tries again
    backlog = OutboxMessage.objects.filter(published_at__isnull=True).count()
    metrics.OUTBOX_BACKLOG.set(backlog)
    if published or failed:
        logger.info("outbox relay: %d published, %d failed, %d backlog", published, failed, backlog)
    return RelayResult(published=published, failed=failed, skipped=skipped, backlog=backlog)
