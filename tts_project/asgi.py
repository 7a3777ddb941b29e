"""ASGI entry point: a request to a sync view is served in one hop to a request thread.

Django's stock ASGI handler gives every request a thread of its own (a new thread per request,
through asgiref's `ThreadSensitiveContext`), sends `request_started` and `request_finished`
through `sync_to_async`, and runs a `MiddlewareMixin` middleware's `process_request` and
`process_response` each in a thread hop. Under a burst of job submits that plumbing cost the
event loop twice the CPU of the view itself (py-spy, sampling the GIL's holder).

Here a request whose route is a sync view (all of the REST API, the admin, the probes, the
downloads) is served like a threaded WSGI server serves it: the body is read on the event loop,
then one call into a fixed pool of request threads runs `request_started`, the sync middleware
chain and the view, and (for a response that is not streamed) `request_finished`, which hands
the thread's database connection back to the pool. The event loop sends the response; a
streamed body (a WAV download, read block by block in a worker thread) is cut short when the
client disconnects. `bench/web.py` measures this against Django's stock handler.

Async views (SSE, audio streams, the OpenAI-compatible endpoints) go through Django's own
handler, in async mode with a sync middleware chain: they run on the event loop, and their
streamed bodies are sent asynchronously as before.

A HEAD request gets the GET response's status and headers and no body. The ASGI server
(uvicorn) drops the body of a HEAD response anyway, but Django would still produce it: a HEAD
on a job's WAV read the whole file (up to about 225 MB) from storage for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import django
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Scope key of the route resolved on the event loop (to pick the path), reused in the request
# thread: resolving a job's URL costs about 0.1 ms of CPU, and Django would resolve it again.
RESOLVED_ROUTE = "tts.resolver_match"


class SyncChainASGIHandler(ASGIHandler):
    _middleware_chain: Any

    def __init__(self) -> None:
        super().__init__()
        self._request_threads: ThreadPoolExecutor | None = None

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._sync_chain = self._middleware_chain
        # Async views: the handler awaits the chain, one switch into a thread for all of it.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        route = self._route(scope)
        # `as_view()` marks an async class-based view's function as a coroutine function too.
        if route is not None and iscoroutinefunction(route.func):
            await super().__call__(scope, receive, send)
            return
        await self._serve_in_request_thread({**scope, RESOLVED_ROUTE: route}, receive, send)

    @staticmethod
    def _route(scope: dict[str, Any]) -> ResolverMatch | None:
        """The route of the request's path (as ASGIRequest computes `path_info`); None: no route,
        the sync chain renders the 404."""
        prefix = get_script_prefix(scope)
        try:
            return get_resolver().resolve(scope["path"].removeprefix(prefix) if prefix else scope["path"])
        except Resolver404:
            return None

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """The route resolved on the event loop, unless a middleware set another URLconf."""
        route = getattr(request, "scope", {}).get(RESOLVED_ROUTE)
        if route is None or hasattr(request, "urlconf"):
            return super().resolve_request(request)
        request.resolver_match = route
        return route

    def _threads(self) -> ThreadPoolExecutor:
        if self._request_threads is None:
            self._request_threads = ThreadPoolExecutor(
                max_workers=settings.WEB_REQUEST_THREADS, thread_name_prefix="request"
            )
        return self._request_threads

    async def _serve_in_request_thread(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        # A fresh copy of the loop's context per request: nothing a request sets leaks into the next.
        context = contextvars.copy_context()
        try:
            response = await loop.run_in_executor(self._threads(), context.run, self._respond, scope, body_file)
            if not response.streaming:
                await self.send_response(response, send)
                return
            try:
                await self._send_until_disconnect(response, receive, send)
            finally:
                await loop.run_in_executor(self._threads(), response.close)
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: IO[bytes]) -> HttpResponseBase:
        """In a request thread: the response, closed already unless its body is streamed."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self._prepared(request, self._sync_chain(request))
        if response.streaming:
            # The body is read after this thread moves on: its database connection goes back
            # now, and the response is closed (request_finished) once it has been sent.
            close_old_connections()
        else:
            response.close()  # request_finished, in the thread that used the connection
        return response

    async def _send_until_disconnect(self, response: HttpResponseBase, receive: Receive, send: Send) -> None:
        """Send a streamed body; stop reading it if the client goes away (a long download)."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait((sending, listening), return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, sending):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                await task

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        return self._prepared(request, await self.get_response_async(request))

    def _prepared(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """The response as the handler sends it, whichever path made it."""
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks on its own
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
