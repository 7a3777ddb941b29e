"""Reads of the gateway: what a user may see, and numbers for probes and metrics."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from . import voices
from .errors import ApplicationError
from .models import JobStatus, OutboxMessage, SynthesisJob


def job_list(*, user: AbstractBaseUser, status: str | None = None) -> QuerySet[SynthesisJob]:
    """The user's own jobs, newest first, optionally of one status."""
    jobs = SynthesisJob.objects.filter(owner=user).order_by("-queued_at", "-id")
    if status:
        if status not in JobStatus.values:
            raise ApplicationError(
                f"unknown status {status!r}; one of {', '.join(JobStatus.values)}", code="invalid", field="status"
            )
        jobs = jobs.filter(status=status)
    return jobs


def job_get(*, user: AbstractBaseUser, job_id: Any) -> SynthesisJob:
    """The user's job; someone else's job is as unknown as a missing one (404)."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        job_uuid = None
    job = SynthesisJob.objects.filter(pk=job_uuid, owner=user).first() if job_uuid else None
    if job is None:
        raise ApplicationError("job not found", code="not_found", field="id", status=404)
    return job


def outbox_backlog_count() -> int:
    return OutboxMessage.objects.filter(published_at__isnull=True).count()


def voice_list() -> list[dict[str, Any]]:
    return [
        {
            "id": voice.id,
            "language": voice.language,
            "sample_rate": voice.sample_rate,
            "num_speakers": voice.num_speakers,
            "quality": voice.quality,
            # Changes whenever the weights do: cached audio is only valid for one checksum.
            "model_checksum": voice.model_checksum,
            "default": voice.id == settings.TTS_DEFAULT_VOICE,
        }
        for voice in voices.voice_list()
    ]
