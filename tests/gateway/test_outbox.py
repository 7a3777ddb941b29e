"""The outbox against a real pulsar-lite broker: publish after commit, relay after an outage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulsar
import pytest
from rest_framework.test import APIClient

from devstack.broker import EmbeddedBroker
from gateway import services
from gateway.models import OutboxMessage, SynthesisJob
from gateway.publisher import close_publisher
from tts_contracts import JobMessage

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def broker(pulsar_broker: EmbeddedBroker, settings: Any, topic_prefix: str) -> Iterator[EmbeddedBroker]:
    settings.PULSAR_URL = pulsar_broker.url
    yield pulsar_broker
    close_publisher()
    pulsar_broker.start()  # a test that stopped it must not take it from the others


@pytest.fixture
def job_reader(broker: EmbeddedBroker, topic_prefix: str) -> Iterator[Any]:
    """Read what an agent would read from a job topic."""
    client = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    consumers: list[pulsar.Consumer] = []

    def read(length_class: str, *, timeout_ms: int = 10_000) -> pulsar.Message:
        topic = f"persistent://public/default/{topic_prefix}-jobs-{length_class}"
        consumer = client.subscribe(topic, "test-agents", initial_position=pulsar.InitialPosition.Earliest)
        consumers.append(consumer)
        message = consumer.receive(timeout_millis=timeout_ms)
        consumer.acknowledge(message)
        return message

    yield read
    client.close()


def test_submit_publishes_after_commit(
    api_client: APIClient, broker: EmbeddedBroker, job_reader: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/jobs", {"text": "Published after commit."}, format="json")
    assert response.status_code == 202
    job = SynthesisJob.objects.get()
    record = OutboxMessage.objects.get()
    assert record.published_at is not None
    assert record.attempts == 1

    message = job_reader("short")
    assert message.partition_key() == str(job.id)
    job_message = JobMessage.from_bytes(message.data())
    assert job_message.job_id == str(job.id)
    assert job_message.attempt == 1
    assert job_message.text == "Published after commit."
    assert job_message.voice == "en_US-joe-medium"
    assert job_message.length_class == "short"
    assert job_message.submitted_at == pytest.approx(job.queued_at.timestamp())


def test_rolled_back_submit_publishes_nothing(
    user: Any, broker: EmbeddedBroker, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.job_submit(owner=user, text="Never sent.")
                raise RuntimeError("request failed later")
        except RuntimeError:
            pass
    assert callbacks == []
    assert SynthesisJob.objects.count() == 0


def test_relay_publishes_jobs_accepted_while_the_broker_was_down(
    api_client: APIClient, broker: EmbeddedBroker, job_reader: Any, django_capture_on_commit_callbacks: Any
) -> None:
    broker.stop()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/jobs", {"text": "Accepted during an outage."}, format="json")
    assert response.status_code == 202  # accepted: the outbox holds it
    record = OutboxMessage.objects.get()
    assert record.published_at is None
    assert record.attempts == 1
    assert record.last_error

    assert services.outbox_relay_pending(older_than_s=0).failed == 1  # still down: stays pending
    assert OutboxMessage.objects.get().published_at is None

    broker.start()
    result = services.outbox_relay_pending(older_than_s=0)
    assert result.published == 1
    assert result.backlog == 0
    record.refresh_from_db()
    assert record.published_at is not None
    assert record.last_error == ""
    job_message = JobMessage.from_bytes(job_reader("short").data())
    assert job_message.job_id == response.json()["id"]


def test_relay_waits_for_young_records_and_skips_finished_jobs(user: Any, broker: EmbeddedBroker) -> None:
    job = services.job_submit(owner=user, text="Young record.")  # in the test transaction: not published
    result = services.outbox_relay_pending(older_than_s=3600)
    assert (result.published, result.failed, result.backlog) == (0, 0, 1)
    services.job_cancel(job=job)
    result = services.outbox_relay_pending(older_than_s=0)
    assert (result.published, result.skipped, result.backlog) == (0, 1, 0)
    assert "cancelled" in OutboxMessage.objects.get().last_error


def test_relay_outbox_command(user: Any, broker: EmbeddedBroker, job_reader: Any, capsys: Any) -> None:
    from django.core.management import call_command

    services.job_submit(owner=user, text="Hello. " * 100)  # 700 chars: medium
    call_command("relay_outbox", "--older-than", "0")
    assert "published 1, backlog 0" in capsys.readouterr().out
    assert JobMessage.from_bytes(job_reader("medium").data()).length_class == "medium"


def test_an_attempt_holds_its_record_until_the_relay_wait_has_passed(
    user: Any, broker: EmbeddedBroker, job_reader: Any
) -> None:
    from django.utils import timezone

    services.job_submit(owner=user, text="Held by another attempt.")  # in the test transaction: not published
    OutboxMessage.objects.update(attempts=1, last_attempt_at=timezone.now())  # another process is sending it
    record = OutboxMessage.objects.get()
    assert services.outbox_publish(record=record, retry_after_s=3600) is False
    assert OutboxMessage.objects.get().attempts == 1  # untouched: the holder's attempt goes on

    assert services.outbox_publish(record=record, retry_after_s=0) is True  # the holder's time is up
    record = OutboxMessage.objects.get()
    assert (record.attempts, record.published_at is not None) == (2, True)
    assert services.outbox_publish(record=record, retry_after_s=0) is False  # confirmed: never sent twice
    assert JobMessage.from_bytes(job_reader("short").data()).text == "Held by another attempt."


def test_the_publish_after_commit_takes_one_query_and_no_transaction(
    api_client: APIClient, broker: EmbeddedBroker, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with django_capture_on_commit_callbacks() as callbacks:
        assert api_client.post("/api/v1/jobs", {"text": "One query."}, format="json").status_code == 202
    (publish,) = [callback for callback in callbacks if callback.__name__ == "publish_after_commit"]
    with CaptureQueriesContext(connection) as context:
        publish()
    assert OutboxMessage.objects.get().published_at is not None
    # The record was written held by this publish: it only confirms it (an UPDATE), no lock held
    # over the send (was two: a conditional UPDATE took the record first).
    assert [query["sql"].split()[0] for query in context.captured_queries] == ["UPDATE"]


def test_the_relay_leaves_a_new_record_to_its_publish_after_commit(user: Any, broker: EmbeddedBroker) -> None:
    """Created held: a relay round within TTS_OUTBOX_RELAY_AFTER_S cannot send it a second time
    while the after-commit publish is under way; once that wait is over it can."""
    services.job_submit(owner=user, text="Held from its creation.")  # in the test transaction: not published
    record = OutboxMessage.objects.get()
    assert (record.attempts, record.last_attempt_at is not None) == (1, True)
    assert services.outbox_publish(record=record, retry_after_s=3600) is False
    assert services.outbox_relay_pending(older_than_s=3600).published == 0
    assert services.outbox_relay_pending(older_than_s=0).published == 1
