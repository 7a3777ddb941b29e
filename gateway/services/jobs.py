"""Submitting, cancelling, retrying and deleting jobs: the client's and the operator's writes."""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .. import metrics
from ..models import SynthesisJob
from ..quotas import quota_reserve
from .encodings import encoded_delete
from .inputs import JobInput, JobRequest, job_batch_check_size, job_input_validate
from .outbox import outbox_create
from .transitions import job_mark_cancelled, job_mark_queued_again

logger = logging.getLogger(__name__)


def _job_create(*, owner: AbstractBaseUser, job_input: JobInput) -> SynthesisJob:
    job = SynthesisJob.objects.create(
        owner=owner,
        text=job_input.text,
        text_chars=len(job_input.text),
        voice=job_input.voice,
        params=job_input.params,
        length_class=job_input.length_class,
        sentence_count=len(job_input.sentences),
        sample_rate=job_input.sample_rate,
    )
    outbox_create(job=job)
    length_class = job.length_class

    def count_submitted() -> None:
        metrics.JOBS_SUBMITTED.labels(length_class=length_class).inc()

    transaction.on_commit(count_submitted, robust=True)
    return job


def job_submit(
    *, owner: AbstractBaseUser, text: str, voice: str | None = None, params: dict | None = None
) -> SynthesisJob:
    """Validate, then write the job and its outbox record in one transaction."""
    job_input = job_input_validate(text=text, voice=voice, params=params)
    with transaction.atomic():
        # Inside the transaction: the reservation locks the owner's row until the job is written.
        quota_reserve(owner=owner, jobs=1, chars=len(job_input.text))
        job = _job_create(owner=owner, job_input=job_input)
    logger.info("job %s submitted: %s, %d chars, voice %s", job.id, job.length_class, len(job.text), job.voice)
    return job


def job_submit_batch(*, owner: AbstractBaseUser, items: list[JobRequest]) -> list[SynthesisJob]:
    """All or nothing: every item is validated before any job is written."""
    job_batch_check_size(count=len(items), total_chars=sum(len(item.text) for item in items))
    inputs = [
        job_input_validate(text=item.text, voice=item.voice, params=item.params, field_prefix=f"jobs[{index}].")
        for index, item in enumerate(items)
    ]
    with transaction.atomic():
        quota_reserve(owner=owner, jobs=len(inputs), chars=sum(len(job_input.text) for job_input in inputs))
        jobs = [_job_create(owner=owner, job_input=job_input) for job_input in inputs]
    logger.info("batch of %d jobs submitted by user %s", len(jobs), owner.pk)
    return jobs


def job_cancel(*, job: SynthesisJob) -> SynthesisJob:
    """Cancel a queued or running job; later events of the job are ignored."""
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().get(pk=job.pk)
        job_mark_cancelled(job=job)
        job.save()
    logger.info("job %s cancelled", job.id)
    return job


def job_retry(*, job: SynthesisJob) -> SynthesisJob:
    """Run a failed or cancelled job again as a new attempt; events of older attempts become stale."""
    with transaction.atomic():
        job = SynthesisJob.objects.select_for_update().get(pk=job.pk)
        job_mark_queued_again(job=job)
        job.save()
        outbox_create(job=job)
    logger.info("job %s retried as attempt %d", job.id, job.attempt)
    return job


def job_delete(*, job: SynthesisJob) -> None:
    """Delete the job, its outbox records and segments, and its audio files once committed."""
    job_id, audio_name, storage = job.pk, job.audio.name, job.audio.storage
    with transaction.atomic():
        job.delete()
        if audio_name:

            def delete_audio() -> None:
                storage.delete(audio_name)
                encoded_delete(audio_name=audio_name, storage=storage)  # its FLAC/MP3/Opus

            transaction.on_commit(delete_audio, robust=True)
    logger.info("job %s deleted", job_id)
