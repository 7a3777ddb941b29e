"""The consumer's ack / negative-ack decisions, without a broker (fake messages)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from prometheus_client import REGISTRY

from gateway import services
from gateway.consumer import EventConsumer
from gateway.models import EventDeadLetter, JobStatus, OutboxMessage, SynthesisJob
from tts_contracts import JobMessage

from .conftest import EventFactory
from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db


class FakeMessage:
    def __init__(self, payload: bytes, *, redeliveries: int = 0) -> None:
        self._payload = payload
        self._redeliveries = redeliveries

    def data(self) -> bytes:
        return self._payload

    def redelivery_count(self) -> int:
        return self._redeliveries

    def message_id(self) -> str:
        return "1:2:3"

    def topic_name(self) -> str:
        return "persistent://public/default/tts-jobs-short-dlq"


def test_applied_event_is_acked(handler: EventConsumer, make_event: EventFactory) -> None:
    job = SynthesisJobFactory()
    assert handler.handle_event(FakeMessage(make_event("started", job).to_bytes())) is True
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_duplicate_and_stale_events_are_acked(handler: EventConsumer, make_event: EventFactory) -> None:
    job = SynthesisJobFactory(status=JobStatus.CANCELLED)
    assert handler.handle_event(FakeMessage(make_event("completed", job).to_bytes())) is True


def test_undecodable_payloads_are_acked(handler: EventConsumer) -> None:
    assert handler.handle_event(FakeMessage(b"not json")) is True
    assert handler.handle_event(FakeMessage(b'{"schema": 99}')) is True
    assert handler.handle_dead_letter(FakeMessage(b"\xff\xfe")) is True


def dead_letters(kind: str) -> float:
    return REGISTRY.get_sample_value("tts_gateway_event_dead_letters_total", {"type": kind}) or 0.0


def test_a_passing_database_error_is_retried_locally_then_applied(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = SynthesisJobFactory()
    real_apply = services.job_apply_event
    calls = []

    def flaky(**kwargs: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real_apply(**kwargs)

    monkeypatch.setattr(services, "job_apply_event", flaky)
    assert handler.handle_event(FakeMessage(make_event("started", job).to_bytes())) is True
    assert len(calls) == 3
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert EventDeadLetter.objects.count() == 0


def test_an_event_that_keeps_failing_is_dead_lettered_and_acked(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.TTS_EVENT_APPLY_RETRIES = 2
    job = SynthesisJobFactory()
    calls = []

    def always_fails(**kwargs: Any) -> str:
        calls.append(1)
        raise OperationalError("value too long for this column")

    monkeypatch.setattr(services, "job_apply_event", always_fails)
    before = dead_letters("started")
    payload = make_event("started", job).to_bytes()
    assert handler.handle_event(FakeMessage(payload)) is True  # acked: the consumer moves on
    assert len(calls) == 3  # one try and two retries, no broker redelivery involved
    record = EventDeadLetter.objects.get()
    assert (record.event_type, record.job_id, record.attempt) == ("started", str(job.id), 1)
    assert bytes(record.payload) == payload
    assert "OperationalError: value too long" in record.error
    assert dead_letters("started") - before == 1
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_a_poison_event_is_dead_lettered_at_once(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = SynthesisJobFactory()
    calls = []

    def bug(**kwargs: Any) -> str:
        calls.append(1)
        raise KeyError("a bug no retry fixes")

    monkeypatch.setattr(services, "job_apply_event", bug)
    assert handler.handle_event(FakeMessage(make_event("segment", job).to_bytes())) is True
    assert len(calls) == 1
    assert EventDeadLetter.objects.get().event_type == "segment"


def test_with_the_database_down_the_event_is_negative_acked_not_lost(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = SynthesisJobFactory()

    def database_down(**kwargs: Any) -> str:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "job_apply_event", database_down)
    monkeypatch.setattr(services, "job_fail_dead_letter", database_down)
    monkeypatch.setattr(services, "event_dead_letter_create", database_down)
    assert handler.handle_event(FakeMessage(make_event("started", job).to_bytes())) is False
    dead = JobMessage(job_id=str(job.id), attempt=1, text="x", voice="v", length_class="short")
    assert handler.handle_dead_letter(FakeMessage(dead.to_bytes())) is False


def test_completed_with_missing_segments_re_sends_the_job_message(
    handler: EventConsumer, make_event: EventFactory, settings: Any
) -> None:
    settings.TTS_MAX_STALL_REPUBLISHES = 2
    job = SynthesisJobFactory(sentence_count=2)
    handler.handle_event(FakeMessage(make_event("started", job).to_bytes()))
    handler.handle_event(FakeMessage(make_event("segment", job, first_sentence=1).to_bytes()))
    completed = make_event("completed", job).to_bytes()
    for resent in (1, 2):
        assert handler.handle_event(FakeMessage(completed)) is True  # acked, never a nack loop
        running = SynthesisJob.objects.get(pk=job.pk)
        assert running.status == JobStatus.RUNNING
        assert running.stall_republishes == resent
        assert OutboxMessage.objects.filter(job=job, attempt=1).count() == resent  # same attempt
    # The re-sends did not bring the segment back: the job fails with the reason.
    assert handler.handle_event(FakeMessage(completed)) is True
    failed = SynthesisJob.objects.get(pk=job.pk)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "synthesis_error")
    assert "0 of 2 sentences" in failed.error


def test_dead_letter_is_acked_after_failing_the_job(handler: EventConsumer) -> None:
    job = SynthesisJobFactory(status=JobStatus.RUNNING)
    dead = JobMessage(job_id=str(job.id), attempt=1, text=job.text, voice=job.voice, length_class="short")
    assert handler.handle_dead_letter(FakeMessage(dead.to_bytes())) is True
    failed = SynthesisJob.objects.get(pk=job.pk)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "agent_crashed_repeatedly")
