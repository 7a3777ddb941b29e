"""ASGI entry point: Django's handler with its middleware chain built in sync mode.

Django runs a `MiddlewareMixin` middleware in async mode by handing each `process_request` and
`process_response` to a thread and back: 15 thread switches for one health check here. Built
in sync mode, the whole chain and a sync view (all of the REST API) run in one thread, entered
once per request. `bench/web.py` (gunicorn's uvicorn worker, 2 AMD EPYC cores) measured the web
workers' CPU per health check at 4.0-4.4 ms against 8.0-8.9 ms with Django's stock handler, and
per job submit at 25.6-29.4 ms against 31.3-37.5 ms.
Async views (SSE, audio streams) still run on the event loop, called from that thread, and
their streamed bodies are sent by the handler asynchronously as before.

A HEAD request gets the GET response's status and headers and no body. The ASGI server
(uvicorn) drops the body of a HEAD response anyway, but Django's handler would still produce
it: a HEAD on a job's WAV read the whole file (up to about 225 MB) from storage for nothing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")


class SyncChainASGIHandler(ASGIHandler):
    _middleware_chain: Any

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        # The handler awaits the chain: one switch into the request's thread for all of it.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await super().run_get_response(request)
        if request.method == "HEAD" and response.streaming:
            # The headers (Content-Length included) stay those of GET; an async empty body is
            # sent without Django's warning about sync iterators. An open file stays among the
            # response's closers and is closed with it.
            response.streaming_content = _no_body()  # type: ignore[attr-defined]
        return response


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


django.setup(set_prefix=False)
application = SyncChainASGIHandler()
