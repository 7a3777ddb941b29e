"""/metrics and the detailed /readyz body: only the monitoring network or the metrics token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_metrics_from_loopback_by_default() -> None:
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.5", "not-an-ip", ""])
def test_metrics_refused_outside_the_monitoring_network(address: str) -> None:
    response = Client(REMOTE_ADDR=address).get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403
    assert b"tts_gateway" not in response.content


def test_metrics_for_the_configured_network_or_the_token(settings: Any) -> None:
    settings.TTS_MONITORING_NETWORKS = ["172.30.0.0/24"]
    settings.TTS_METRICS_TOKEN = "s3cret-metrics-token"
    assert Client(REMOTE_ADDR="172.30.0.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    outside = Client(REMOTE_ADDR="198.51.100.1")
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-metrics-token").status_code == 403


def test_readyz_details_only_for_monitoring(settings: Any) -> None:
    settings.PULSAR_URL = "pulsar://127.0.0.1:1"  # nothing listens: the broker check fails
    public = Client(REMOTE_ADDR="203.0.113.9").get("/readyz")
    assert public.status_code == 200  # only the database decides readiness
    assert public.json() == {"status": "degraded"}  # no names, no addresses, no error text
    inside = Client(REMOTE_ADDR="127.0.0.1").get("/readyz")
    assert inside.status_code == 200
    assert (inside.json()["failed"], inside.json()["degraded"]) == ([], ["broker"])
    assert inside.json()["checks"]["broker"].startswith("error:")
