"""The ASGI entry point: a sync view is served in one hop to a request thread, an async view on
the event loop through Django's own handler."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref import sync
from asgiref.sync import iscoroutinefunction
from django.core import signals
from django.core.checks import Warning as CheckWarning
from django.urls import URLResolver, get_resolver

from gateway.checks import request_thread_warnings, request_threads_fit_the_pool
from tts_project.asgi import application

from .asgi_scope import http_scope


def _get(path: str, *, headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[int, bytes]:
    """One GET through the project's ASGI application, as the server would send it."""
    scope = http_scope(path, headers=headers)
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        answered = asyncio.Event()
        requests = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(requests, None)
            if message is not None:
                return message
            await answered.wait()  # the client stays until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await application(scope, receive, send)

    asyncio.run(run())
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    return status, b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")


@pytest.fixture
def request_signals() -> Any:
    """The thread that sent each request_started and request_finished."""
    seen: list[tuple[str, str]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def test_a_sync_view_runs_in_one_request_thread_with_no_async_hops(
    monkeypatch: pytest.MonkeyPatch, request_signals: list[tuple[str, str]]
) -> None:
    assert _get("/healthz")[0] == 200  # warm: the first request loads the URLconf
    request_signals.clear()
    switches: list[str] = []
    original = sync.SyncToAsync.__init__

    def counting(self: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        switches.append(getattr(func, "__qualname__", repr(func)))
        original(self, func, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__init__", counting)
    status, body = _get("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    # Django's stock handler made 15 thread switches here (one per process_request and
    # process_response), and one request-started, one request-finished and one close hop besides.
    assert switches == []
    # Both signals in the same request thread: request_finished hands back the connection it used.
    assert [kind for kind, _ in request_signals] == ["started", "finished"]
    assert request_signals[0][1] == request_signals[1][1]
    assert request_signals[0][1].startswith("request")


def test_an_unknown_path_gets_the_sync_chains_404() -> None:
    assert _get("/no/such/page")[0] == 404


def _routes_to_async_view(path: str) -> bool:
    route = application._route(http_scope(path))
    return route is not None and iscoroutinefunction(route.func)


def test_routes_are_sorted_by_their_views_kind() -> None:
    asynchronous = ("/api/v1/jobs/abc/audio/stream", "/api/v1/jobs/abc/events", "/v1/audio/speech", "/v1/models")
    synchronous = ("/api/v1/jobs", "/api/v1/jobs/abc", "/api/v1/jobs/abc/audio", "/healthz", "/admin/", "/nope")
    assert [_routes_to_async_view(path) for path in asynchronous] == [True] * 4
    assert [_routes_to_async_view(path) for path in synchronous] == [False] * 6


def test_a_sync_requests_route_is_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _get("/healthz")[0] == 200  # warm
    root = get_resolver()
    resolved: list[str] = []
    original = URLResolver.resolve

    def counting(self: URLResolver, path: str) -> Any:
        if self is root:
            resolved.append(path)
        return original(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counting)
    assert _get("/healthz")[0] == 200
    assert resolved == ["/healthz"]  # on the event loop only: the request thread reuses the match


def test_an_async_view_runs_on_the_event_loop_through_djangos_handler(request_signals: list[tuple[str, str]]) -> None:
    # No key: the async view answers 401 itself, with the project's error body.
    status, body = _get("/v1/models")
    assert status == 401, body
    assert json.loads(body)["error"]["code"] in {"not_authenticated", "authentication_failed", "invalid_api_key"}
    # Django's handler sent the signals, never a request thread of this handler.
    assert [kind for kind, _ in request_signals] == ["started", "finished"]
    assert not any(name.startswith("request") for _, name in request_signals)


def test_request_threads_beyond_the_database_pool_are_reported() -> None:
    assert request_thread_warnings(request_threads=6, pool_size=10) == []  # the defaults fit
    [warning] = request_thread_warnings(request_threads=8, pool_size=10)
    assert isinstance(warning, CheckWarning) and warning.id == "tts.W001"
    assert "TTS_WEB_THREADS=8" in warning.msg and "12 connections" in warning.msg
    assert request_threads_fit_the_pool() == []  # this process's own settings
