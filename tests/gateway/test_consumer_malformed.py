"""Events that break the wire contract, through the real broker: each is acknowledged, counted
and logged, leaves its job untouched, and the consumer goes on to apply the next good event."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pulsar
import pytest
from django.core.management import call_command
from prometheus_client import REGISTRY

from devstack.broker import EmbeddedBroker
from gateway.models import AudioSegment, JobStatus, SynthesisJob

from .conftest import EventFactory
from .factories import SynthesisJobFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def mutate(payload: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    data = json.loads(payload)
    change(data)
    return json.dumps(data).encode()


def set_data(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["data"].__setitem__(key, value)


def rejected(kind: str) -> float:
    return REGISTRY.get_sample_value("tts_gateway_events_applied_total", {"type": kind, "result": "rejected"}) or 0.0


@pytest.fixture
def send_raw(pulsar_broker: EmbeddedBroker, settings: Any, topic_prefix: str) -> Iterator[Callable[..., None]]:
    settings.PULSAR_URL = pulsar_broker.url
    client = pulsar.Client(pulsar_broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    producer = client.create_producer(f"persistent://public/default/{topic_prefix}-events")

    def send(payload: bytes, *, key: str) -> None:
        producer.send(payload, partition_key=key)

    yield send
    client.close()


def run_consumer(*, seconds: float) -> None:
    call_command("run_event_consumer", "--max-seconds", str(seconds), "--no-relay", "--metrics-port", "0")


def test_malformed_events_are_acked_counted_and_the_next_good_event_applies(
    send_raw: Callable[..., None], make_event: EventFactory, caplog: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    key = str(job.id)
    started = make_event("started", job).to_bytes()
    segment = make_event("segment", job, first_sentence=0).to_bytes()
    completed = make_event("completed", job).to_bytes()
    malformed = {
        "segment": [
            mutate(segment, set_data("first_sentence", 2**70)),  # would overflow an integer column
            mutate(segment, set_data("sentence_count", "one")),  # wrong type
            mutate(segment, lambda data: data["data"].pop("audio_b64")),  # missing field
            mutate(segment, set_data("audio_b64", "%%% not base64")),
        ],
        "completed": [
            completed.replace(b'"synthesis_seconds":0.5', b'"synthesis_seconds":Infinity'),
            mutate(completed, set_data("sample_rate", -1)),
        ],
        "started": [
            mutate(started, lambda data: data.pop("job_id")),  # missing envelope field
            mutate(started, lambda data: data.__setitem__("attempt", 2**70)),
            mutate(started, lambda data: data.__setitem__("attempt", True)),  # a bool is not an integer
            mutate(started, lambda data: data.__setitem__("schema", 99)),  # a version it does not know
        ],
        "unknown": [
            mutate(started, lambda data: data.__setitem__("type", "exploded")),  # unknown kind
            b"not json at all",
            b"[1, 2, 3]",
        ],
    }
    assert b"Infinity" in malformed["completed"][0]
    before = {kind: rejected(kind) for kind in malformed}

    for payloads in malformed.values():
        for payload in payloads:
            send_raw(payload, key=key)
    send_raw(started, key=key)  # the next good event
    with caplog.at_level(logging.ERROR, logger="gateway.consumer"):
        run_consumer(seconds=4)  # a negative-acked payload would come back within 1 s and count again

    for kind, payloads in malformed.items():
        assert rejected(kind) - before[kind] == len(payloads), kind
    assert caplog.text.count("rejected ") == sum(map(len, malformed.values()))
    assert "first_sentence must be between 0 and" in caplog.text  # the log says what was wrong
    assert f"job '{key}'" in caplog.text  # and which job the payload claimed
    running = SynthesisJob.objects.get(pk=job.pk)
    assert running.status == JobStatus.RUNNING  # the good event applied
    assert (running.sentences_done, running.progress, running.error) == (0, 0.0, "")
    assert AudioSegment.objects.count() == 0  # no malformed segment was stored

    # Acknowledged, not just skipped: a second consumer run receives none of them again.
    after = {kind: rejected(kind) for kind in malformed}
    send_raw(segment, key=key)
    send_raw(mutate(segment, set_data("first_sentence", 1)), key=key)
    send_raw(completed, key=key)
    run_consumer(seconds=3)
    assert {kind: rejected(kind) for kind in malformed} == after
    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED, done.error
