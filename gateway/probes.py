"""Liveness (/healthz) and readiness (/readyz) probes; no authentication, no DRF."""

from __future__ import annotations

import logging
import socket
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import metrics
from .monitoring_access import monitoring_allowed

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 2.0


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; checks nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache was not read back")
    cache.delete(key)


def broker_address(url: str) -> tuple[str, int]:
    """host and port of the first broker of a pulsar:// or pulsar+ssl:// service URL."""
    parts = urlsplit(url)
    netloc = parts.netloc.split(",")[0]
    host, _, port = netloc.rpartition(":")
    if not host:
        host, port = netloc, ""
    default_port = 6651 if parts.scheme == "pulsar+ssl" else 6650
    return host.strip("[]"), int(port or default_port)


def _check_broker() -> None:
    host, port = broker_address(settings.PULSAR_URL)
    with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
        pass


# Only the database decides readiness: with it the gateway accepts jobs (the outbox holds them
# through a broker outage, the cache is an optimization). An orchestrator that pulled every web
# pod during a broker outage would turn a delay into an outage.
_REQUIRED = frozenset({"database"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, else 503. Broker (TCP connect) and cache are checked and
    reported in the body (`checks`, `degraded`) and in `tts_gateway_dependency_up`, never a 503.

    The checks' details (which failed, addresses, error messages) only to the monitoring network.
    """
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker), ("cache", _check_cache)):
        try:
            check()
            checks[name] = "ok"
        except Exception as error:
            checks[name] = f"error: {type(error).__name__}: {error}"
            logger.warning("readiness check %s failed: %s", name, error)
        metrics.DEPENDENCY_UP.labels(dependency=name).set(1 if checks[name] == "ok" else 0)
    failed = sorted(name for name, result in checks.items() if result != "ok" and name in _REQUIRED)
    degraded = sorted(name for name, result in checks.items() if result != "ok" and name not in _REQUIRED)
    body: dict = {"status": "unavailable" if failed else ("degraded" if degraded else "ok")}
    if monitoring_allowed(request):
        body.update(failed=failed, degraded=degraded, checks=checks)
    return JsonResponse(body, status=503 if failed else 200)
