"""/healthz, /readyz (real Postgres, Redis and broker), /metrics, the schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from devstack.broker import EmbeddedBroker, free_port
from gateway import services
from gateway.probes import broker_address

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(pulsar_broker: EmbeddedBroker, settings: Any) -> Iterator[EmbeddedBroker]:
    settings.PULSAR_URL = pulsar_broker.url
    yield pulsar_broker
    pulsar_broker.start()


def test_healthz_needs_no_auth() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def dependency_up(name: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("tts_gateway_dependency_up", {"dependency": name})


@pytest.mark.integration
def test_readyz_stays_ready_when_the_broker_stops_and_reports_it(broker: EmbeddedBroker, user: Any) -> None:
    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "cache": "ok"}
    assert ready.json()["status"] == "ok"
    assert dependency_up("broker") == 1

    broker.stop()
    try:
        down = Client().get("/readyz")
        # The gateway still accepts jobs: the outbox keeps them until the broker is back.
        job = services.job_submit(owner=user, text="Accepted while the broker is down.")
    finally:
        broker.start()
    assert down.status_code == 200, down.content
    body = down.json()
    assert (body["status"], body["failed"], body["degraded"]) == ("degraded", [], ["broker"])
    assert body["checks"]["broker"].startswith("error:")
    assert body["checks"]["database"] == "ok"
    assert dependency_up("broker") == 0
    assert dependency_up("database") == 1
    assert job.outbox_messages.get().published_at is None


def test_readyz_is_503_when_the_database_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import probes

    def database_down() -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(probes, "_check_database", database_down)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert dependency_up("database") == 0


def test_readyz_names_the_cache(settings: Any, broker: EmbeddedBroker) -> None:
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    try:
        response = Client().get("/readyz")
    finally:
        caches.close_all()
    assert response.status_code == 200
    assert response.json()["degraded"] == ["cache"]
    assert dependency_up("cache") == 0


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("pulsar://127.0.0.1:6650", ("127.0.0.1", 6650)),
        ("pulsar://broker", ("broker", 6650)),
        ("pulsar+ssl://broker.example:6651", ("broker.example", 6651)),
        ("pulsar://a:7000,b:7000", ("a", 7000)),
    ],
)
def test_broker_address(url: str, address: tuple[str, int]) -> None:
    assert broker_address(url) == address


def test_metrics_exports_gateway_and_django_metrics() -> None:
    services.job_submit(owner=UserFactory(), text="Counted.")  # one outbox record, unconfirmed
    response = Client().get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "tts_gateway_outbox_backlog 1.0" in text  # read from the database at scrape time
    for name in (
        "tts_gateway_jobs_submitted_total",
        "tts_gateway_jobs_finished_total",
        "tts_gateway_job_latency_seconds",
        "tts_gateway_job_queue_wait_seconds",
        "tts_gateway_time_to_first_segment_seconds",
        "tts_gateway_outbox_published_total",
        "tts_gateway_events_applied_total",
        "tts_gateway_event_lag_seconds",
        "django_http_requests_total_by_method",
    ):
        assert f"# TYPE {name}" in text, name


def test_schema_and_docs() -> None:
    schema = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/batch",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/audio",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/validate",
        "/api/v1/voices",
    ):
        assert path in paths, path
    docs = Client().get("/api/docs")
    assert docs.status_code == 200
    # Swagger UI comes from the sidecar package, served by us: the page works offline.
    page = docs.content.decode()
    assert "swagger-ui-bundle.js" in page
    # Every script and stylesheet from this server. (Not a bare "cdn" search: the page carries a
    # random 64-character token, which once contained those three letters.)
    assert not [url for url in re.findall(r"""(?:src|href)=["']([^"']+)""", page) if url.startswith(("http", "//"))]
    assert not [host for host in ("jsdelivr", "unpkg", "cdnjs") if host in page.lower()]


def test_schema_generates_without_warnings(tmp_path: Any) -> None:
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/jobs/{job_id}/audio" in (tmp_path / "schema.yaml").read_text()


def test_metrics_aggregate_gunicorn_workers_in_multiprocess_mode(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two "workers" write to PROMETHEUS_MULTIPROC_DIR; /metrics reports their sum."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = (
        "import django; django.setup()\n"
        "from gateway import metrics\n"
        "metrics.JOBS_SUBMITTED.labels(length_class='short').inc()\n"
        "metrics.OUTBOX_BACKLOG.set(3)\n"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tts_project.settings.test",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", worker], cwd=Path(__file__).resolve().parents[2], env=env, check=True, timeout=60
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = Client().get("/metrics").content.decode()
    assert 'tts_gateway_jobs_submitted_total{length_class="short"} 2.0' in text
    assert "tts_gateway_outbox_backlog 3.0" in text  # most recent value, not a sum over workers
