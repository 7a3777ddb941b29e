"""Authentication, ownership and throttles for the async views, on the API's own rules.

`Authorization: Bearer <key>` (OpenAI clients) or `Token <key>`, resolved exactly as the REST
API does (`apikeys.api_key_resolve`: hashed keys, expiry, revocation, last use), else the
session (the admin page's EventSource). A user reaches only their own jobs; staff signed in to
the admin reach every job, as in the admin itself. The per-user throttles are the API's
(`throttling.throttle_wait`): a stream opened counts as one `read` request, a speech request
as one `submit`. Every database or cache round trip runs off the event loop.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from ..apikeys import api_key_resolve
from ..errors import ApplicationError
from ..models import SynthesisJob
from ..throttling import throttle_wait
from .common import db

KEY_SCHEMES = ("token", "bearer")


@dataclass(frozen=True)
class Caller:
    user: AbstractBaseUser
    via_session: bool


@db
def _key_owner(raw_key: str) -> AbstractBaseUser | None:
    key = api_key_resolve(raw_key=raw_key)
    return key.owner if key is not None else None


@db
def _job(job_id: uuid.UUID, owner: AbstractBaseUser | None) -> SynthesisJob | None:
    jobs = SynthesisJob.objects.filter(pk=job_id)
    return (jobs if owner is None else jobs.filter(owner=owner)).first()


_throttle_wait = db(throttle_wait)


async def caller_get(request: HttpRequest) -> Caller:
    """The authenticated caller, or ApplicationError 401 (a bad key is not retried as session)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw_key = header.strip().partition(" ")
        if scheme.lower() not in KEY_SCHEMES or not raw_key.strip() or " " in raw_key.strip():
            raise ApplicationError(
                "unsupported Authorization header; use 'Bearer <key>'",
                code="not_authenticated",
                field="Authorization",
                status=401,
            )
        owner = await _key_owner(raw_key.strip())
        if owner is None:
            raise ApplicationError(
                "invalid, revoked or expired API key", code="authentication_failed", field="Authorization", status=401
            )
        if not owner.is_active:
            raise ApplicationError(
                "user inactive or deleted", code="authentication_failed", field="Authorization", status=401
            )
        return Caller(user=owner, via_session=False)
    user = await request.auser()
    if not user.is_authenticated:
        raise ApplicationError(
            "authentication credentials were not provided", code="not_authenticated", field="Authorization", status=401
        )
    return Caller(user=user, via_session=True)  # type: ignore[arg-type]


async def caller_throttle(*, caller: Caller, scope: str, cost: int = 1) -> None:
    """Count the request in the caller's `scope` budget, or raise 429 with `retry_after_s`."""
    wait = await _throttle_wait(scope=scope, ident=f"user:{caller.user.pk}", cost=cost)
    if wait is not None:
        raise ApplicationError(
            f"request was throttled; expected available in {wait:.0f} seconds",
            code="throttled",
            field=None,
            status=429,
            extra={"retry_after_s": math.ceil(wait)},
        )


async def job_for_caller(*, caller: Caller, job_id: str) -> SynthesisJob:
    """The caller's job (any job for staff in the admin); 404 otherwise, as for a missing one."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        job_uuid = None
    job = (
        await _job(job_uuid, None if caller.via_session and caller.user.is_staff else caller.user) if job_uuid else None
    )
    if job is None:
        raise ApplicationError("job not found", code="not_found", field="id", status=404)
    return job


async def job_for_read(request: HttpRequest, job_id: str) -> SynthesisJob:
    """A streaming GET's job: the method, the caller, the `read` throttle and ownership checked."""
    if request.method != "GET":
        raise ApplicationError("method not allowed", code="method_not_allowed", status=405)
    caller = await caller_get(request)
    await caller_throttle(caller=caller, scope="read")
    return await job_for_caller(caller=caller, job_id=job_id)
