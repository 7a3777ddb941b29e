"""`Idempotency-Key` on submissions: a retried request (the client lost the answer) gets the jobs
the first one created instead of new ones; the same key with a different body is a 409.

A key is remembered for TTS_IDEMPOTENCY_KEY_TTL_HOURS (24 h, as payment APIs do): retries come
within minutes, and a table of every key ever sent would grow without bound. After that the
key is free again; the retention housekeeping deletes expired rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..errors import ApplicationError
from ..models import IdempotencyKey, SynthesisJob

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255


def idempotency_keys_expired_before(now: datetime | None = None) -> datetime | None:
    """Keys created before this instant are expired; None when keys never expire (TTL 0)."""
    hours = settings.TTS_IDEMPOTENCY_KEY_TTL_HOURS
    return None if hours <= 0 else (now or timezone.now()) - timedelta(hours=hours)


def idempotency_keys_purge_expired(*, now: datetime | None = None) -> int:
    """Delete expired keys (their jobs stay); return how many."""
    cutoff = idempotency_keys_expired_before(now)
    if cutoff is None:
        return 0
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("deleted %d %s record(s) created before %s", deleted, HEADER, cutoff.isoformat())
    return deleted


def _live_record(*, owner: AbstractBaseUser, key: str) -> IdempotencyKey | None:
    """The key's record, or None when there is none or it expired (then it is deleted here)."""
    record = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    cutoff = idempotency_keys_expired_before()
    if record is None or cutoff is None or record.created_at >= cutoff:
        return record
    # Only this row as read: a concurrent request may have replaced it with a fresh one.
    IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).delete()
    logger.info("%s %r of user %s expired (created %s); used as a new key", HEADER, key, owner.pk, record.created_at)
    return None


def _request_hash(*, endpoint: str, data: Any) -> str:
    canonical = json.dumps({"endpoint": endpoint, "body": data}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replay(*, record: IdempotencyKey, request_hash: str) -> list[SynthesisJob]:
    if record.request_hash != request_hash:
        raise ApplicationError(
            f"{HEADER} {record.key!r} was already used with a different request; use a new key for a new request",
            code="idempotency_key_reused",
            field=HEADER,
            status=409,
        )
    jobs = SynthesisJob.objects.in_bulk([uuid.UUID(job_id) for job_id in record.job_ids])
    return [jobs[job_id] for job_id in (uuid.UUID(job_id) for job_id in record.job_ids) if job_id in jobs]


def job_submit_idempotent(
    *, owner: AbstractBaseUser, key: str, endpoint: str, data: Any, submit: Callable[[], list[SynthesisJob]]
) -> tuple[list[SynthesisJob], bool]:
    """Run `submit` once per (owner, key); return its jobs and whether this was a replay.

    The key record is written in the jobs' transaction, so a key never names jobs that were not
    created. Keys are scoped per user: two users may use the same key. An expired key counts as
    new.
    """
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise ApplicationError(
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} characters", code="invalid_idempotency_key", field=HEADER
        )
    request_hash = _request_hash(endpoint=endpoint, data=data)
    for _ in range(2):
        record = _live_record(owner=owner, key=key)
        if record is not None:
            jobs = _replay(record=record, request_hash=request_hash)
            logger.info("%s %r of user %s replayed: %d job(s)", HEADER, key, owner.pk, len(jobs))
            return jobs, True
        try:
            with transaction.atomic():
                jobs = submit()
                IdempotencyKey.objects.create(
                    owner=owner,
                    key=key,
                    endpoint=endpoint,
                    request_hash=request_hash,
                    job_ids=[str(job.id) for job in jobs],
                )
            return jobs, False
        except IntegrityError:
            # A concurrent request with the same key committed first: answer as its replay.
            continue
    raise ApplicationError(
        f"{HEADER} {key!r} is being used concurrently; retry", code="conflict", field=HEADER, status=409
    )
