"""The ASGI entry point runs the middleware chain and a sync view in one thread per request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref import sync

from tts_project.asgi import application

from .asgi_scope import http_scope


def _get(path: str) -> tuple[int, bytes]:
    """One GET through the project's ASGI application, as the server would send it."""
    scope = http_scope(path)
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


def test_a_request_enters_a_thread_a_few_times_not_twice_per_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _get("/healthz")[0] == 200  # warm: the first request loads the URLconf
    switches: list[str] = []
    original = sync.SyncToAsync.__init__

    def counting(self: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        switches.append(getattr(func, "__qualname__", repr(func)))
        original(self, func, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__init__", counting)
    status, body = _get("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    # New switches per request: request_started's receivers and the response's close (the chain's
    # own, built once, runs the middleware and the view). Django's async chain made 15 here, one
    # for each process_request and process_response.
    assert len(switches) <= 3, switches
