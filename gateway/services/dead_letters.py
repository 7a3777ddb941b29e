"""Events the consumer could not apply, kept as `EventDeadLetter` rows for an operator."""

from __future__ import annotations

import logging

from .. import metrics
from ..models import EventDeadLetter

logger = logging.getLogger(__name__)


def event_dead_letter_create(
    *, payload: bytes, event_type: str, error: str, job_id: str = "", attempt: int | None = None
) -> EventDeadLetter:
    """Store the message as received with the error that stopped it; the consumer then acks it."""
    record = EventDeadLetter.objects.create(
        event_type=event_type[:32],
        job_id=job_id[:64],
        attempt=attempt,
        payload=payload,
        error=error,
    )
    metrics.EVENT_DEAD_LETTERS.labels(type=event_type).inc()
    logger.error(
        "%s of job %s attempt %s dead-lettered as record %s: %s", event_type, job_id, attempt, record.pk, error
    )
    return record
