"""`Idempotency-Key` on submissions: a retried request (the client lost the answer) gets the jobs
the first one created instead of new ones; the same key with a different body is a 409."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ..errors import ApplicationError
from ..models import IdempotencyKey, SynthesisJob

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255


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
    created. Keys are scoped per user: two users may use the same key.
    """
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise ApplicationError(
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} characters", code="invalid_idempotency_key", field=HEADER
        )
    request_hash = _request_hash(endpoint=endpoint, data=data)
    for _ in range(2):
        record = IdempotencyKey.objects.filter(owner=owner, key=key).first()
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
