"""The consumer's ack / negative-ack decisions, without a broker (fake messages)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError

from gateway import consumer as consumer_module
from gateway import services
from gateway.consumer import MAX_COMPLETED_REDELIVERIES, EventConsumer
from gateway.models import JobStatus, SynthesisJob
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


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> EventConsumer:
    monkeypatch.setattr(consumer_module, "DB_ERROR_PAUSE_S", 0.0)
    monkeypatch.setattr(consumer_module, "close_old_connections", lambda: None)  # keep the test transaction
    monkeypatch.setattr(consumer_module.connections, "close_all", lambda: None)
    return EventConsumer(service_url="pulsar://unused:6650")


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


def test_database_error_is_negative_acked(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = SynthesisJobFactory()

    def database_down(**kwargs: Any) -> str:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "job_apply_event", database_down)
    monkeypatch.setattr(services, "job_fail_dead_letter", database_down)
    assert handler.handle_event(FakeMessage(make_event("started", job).to_bytes())) is False
    dead = JobMessage(job_id=str(job.id), attempt=1, text="x", voice="v", length_class="short")
    assert handler.handle_dead_letter(FakeMessage(dead.to_bytes())) is False


def test_completed_waits_for_missing_segments_then_fails_the_job(
    handler: EventConsumer, make_event: EventFactory
) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    handler.handle_event(FakeMessage(make_event("started", job).to_bytes()))
    handler.handle_event(FakeMessage(make_event("segment", job, first_sentence=1).to_bytes()))
    completed = make_event("completed", job).to_bytes()
    assert handler.handle_event(FakeMessage(completed, redeliveries=0)) is False
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    assert handler.handle_event(FakeMessage(completed, redeliveries=MAX_COMPLETED_REDELIVERIES)) is True
    failed = SynthesisJob.objects.get(pk=job.pk)
    assert failed.status == JobStatus.FAILED
    assert "0 of 2 sentences" in failed.error


def test_dead_letter_is_acked_after_failing_the_job(handler: EventConsumer) -> None:
    job = SynthesisJobFactory(status=JobStatus.RUNNING)
    dead = JobMessage(job_id=str(job.id), attempt=1, text=job.text, voice=job.voice, length_class="short")
    assert handler.handle_dead_letter(FakeMessage(dead.to_bytes())) is True
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.FAILED
