"""PULSAR_AUTH_TOKEN reaches every Pulsar client the gateway opens (publisher and consumer).

pulsar-lite does not check tokens, so this proves the wiring (the client authenticates and
still publishes to a real broker); Apache Pulsar in docker-compose enforces them.
"""

from __future__ import annotations

from typing import Any

import pulsar
import pytest

from devstack.broker import EmbeddedBroker
from gateway import consumer as consumer_module
from gateway import publisher as publisher_module
from tts_runtime import pulsar_authentication


@pytest.fixture
def client_kwargs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    real_client = pulsar.Client

    def recording_client(*args: Any, **kwargs: Any) -> pulsar.Client:
        seen.append(kwargs)
        return real_client(*args, **kwargs)

    monkeypatch.setattr(publisher_module.pulsar, "Client", recording_client)
    return seen


def test_no_token_no_authentication() -> None:
    assert pulsar_authentication("") is None
    assert pulsar_authentication("  ") is None
    assert isinstance(pulsar_authentication("eyJ.x.y"), pulsar.AuthenticationToken)


def test_publisher_and_consumer_authenticate_with_the_token(
    pulsar_broker: EmbeddedBroker, settings: Any, client_kwargs: list[dict[str, Any]], topic_prefix: str
) -> None:
    settings.PULSAR_AUTH_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0dHMifQ.c2lnbmF0dXJl"
    publisher = publisher_module.Publisher(service_url=pulsar_broker.url, timeout_s=5)
    try:
        publisher.send(topic=f"persistent://public/default/{topic_prefix}-auth", payload=b"{}", partition_key="k")
    finally:
        publisher.close()
    event_consumer = consumer_module.EventConsumer(service_url=pulsar_broker.url)
    try:
        event_consumer.open()
    finally:
        event_consumer.close()
    assert len(client_kwargs) == 2
    assert all(isinstance(kwargs["authentication"], pulsar.AuthenticationToken) for kwargs in client_kwargs)
