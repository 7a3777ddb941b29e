"""Authentication and ownership for the async views, on the same token model as the REST API.

`Authorization: Token <key>` (the API's scheme) or `Bearer <key>` (OpenAI clients), else the
session (the admin page's EventSource). A user reaches only their own jobs; staff signed in to
the admin reach every job, as in the admin itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from ..errors import ApplicationError
from ..models import SynthesisJob
from .common import db

TOKEN_KEYWORDS = ("token", "bearer")


@dataclass(frozen=True)
class Caller:
    user: AbstractBaseUser
    via_session: bool


@db
def _token(key: str) -> Token | None:
    return Token.objects.select_related("user").filter(key=key).first()


@db
def _job(job_id: uuid.UUID, owner: AbstractBaseUser | None) -> SynthesisJob | None:
    jobs = SynthesisJob.objects.filter(pk=job_id)
    return (jobs if owner is None else jobs.filter(owner=owner)).first()


async def caller_get(request: HttpRequest) -> Caller:
    """The authenticated caller, or ApplicationError 401 (a bad token is not retried as session)."""
    header = request.headers.get("Authorization", "")
    if header:
        keyword, _, key = header.strip().partition(" ")
        if keyword.lower() not in TOKEN_KEYWORDS or not key.strip():
            raise ApplicationError(
                "unsupported Authorization header; use 'Bearer <key>'",
                code="not_authenticated",
                field="Authorization",
                status=401,
            )
        token = await _token(key.strip())
        if token is None or not token.user.is_active:
            raise ApplicationError("invalid API key", code="authentication_failed", field="Authorization", status=401)
        return Caller(user=token.user, via_session=False)
    user = await request.auser()
    if not user.is_authenticated:
        raise ApplicationError(
            "authentication credentials were not provided", code="not_authenticated", field="Authorization", status=401
        )
    return Caller(user=user, via_session=True)  # type: ignore[arg-type]


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
