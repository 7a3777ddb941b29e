"""Job services: submit writes job + outbox atomically, the state machine refuses illegal moves."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import services
from gateway.errors import ApplicationError, IllegalTransitionError
from gateway.models import AudioSegment, JobStatus, OutboxMessage, SynthesisJob
from gateway.services import jobs

from .factories import SynthesisJobFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_submit_writes_job_and_outbox_in_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory()

    def broken_outbox(**kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs, "outbox_create", broken_outbox)
    with pytest.raises(RuntimeError):
        services.job_submit(owner=user, text="Hello world.")
    assert SynthesisJob.objects.count() == 0  # the job row was rolled back with the outbox write


def test_submit_publishes_only_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_submit(owner=UserFactory(), text="Hello world.")
    assert job.status == JobStatus.QUEUED
    # publish + the submitted counter, both deferred to the commit
    assert len(callbacks) == 2
    assert OutboxMessage.objects.get().published_at is None


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.QUEUED, JobStatus.SUCCEEDED),
        (JobStatus.RUNNING, JobStatus.QUEUED),
        (JobStatus.SUCCEEDED, JobStatus.RUNNING),
        (JobStatus.SUCCEEDED, JobStatus.FAILED),
        (JobStatus.FAILED, JobStatus.SUCCEEDED),
        (JobStatus.CANCELLED, JobStatus.RUNNING),
        (JobStatus.FAILED, JobStatus.QUEUED),
    ],
)
def test_illegal_transitions_raise(current: str, target: str) -> None:
    job = SynthesisJobFactory(status=current)
    with pytest.raises(IllegalTransitionError) as raised:
        services.job_transition(job=job, to=target)
    assert isinstance(raised.value, ApplicationError)
    assert raised.value.status == 409
    assert raised.value.field == "status"
    assert job.status == current


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.QUEUED, JobStatus.CANCELLED),
        (JobStatus.QUEUED, JobStatus.FAILED),
        (JobStatus.RUNNING, JobStatus.SUCCEEDED),
        (JobStatus.RUNNING, JobStatus.FAILED),
        (JobStatus.RUNNING, JobStatus.CANCELLED),
    ],
)
def test_forward_transitions_are_allowed(current: str, target: str) -> None:
    job = SynthesisJobFactory(status=current)
    services.job_transition(job=job, to=target)
    assert job.status == target


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_cancel_open_job(status: str) -> None:
    job = SynthesisJobFactory(status=status)
    AudioSegment.objects.create(job=job, attempt=1, first_sentence=0, sentence_count=1, sample_rate=22050, pcm=b"\0\0")
    job = services.job_cancel(job=job)
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    assert AudioSegment.objects.count() == 0


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_final_job_raises(status: str) -> None:
    job = SynthesisJobFactory(status=status)
    with pytest.raises(IllegalTransitionError):
        services.job_cancel(job=job)
    assert SynthesisJob.objects.get(pk=job.pk).status == status


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_makes_a_new_attempt_with_a_new_outbox_record(status: str) -> None:
    job = SynthesisJobFactory(status=status, error="boom", progress=0.5)
    job = services.job_retry(job=job)
    assert job.status == JobStatus.QUEUED
    assert job.attempt == 2
    assert job.error == ""
    assert job.progress == 0.0
    record = OutboxMessage.objects.get(job=job)
    assert record.attempt == 2
    assert '"attempt":2' in record.payload


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED])
def test_retry_of_open_or_succeeded_job_raises(status: str) -> None:
    job = SynthesisJobFactory(status=status)
    with pytest.raises(IllegalTransitionError):
        services.job_retry(job=job)
    assert OutboxMessage.objects.count() == 0


def test_input_validation_names_the_field_with_a_prefix() -> None:
    with pytest.raises(ApplicationError) as raised:
        services.job_input_validate(text="Hi.", params={"length_scale": 100}, field_prefix="jobs[3].")
    assert raised.value.field == "jobs[3].params.length_scale"
    assert raised.value.status == 400
