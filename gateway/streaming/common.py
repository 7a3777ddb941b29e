"""Pieces the streaming views share: waiting on live updates, error responses, settings."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from .. import live
from ..errors import ApplicationError
from ..models import SynthesisJob

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The first stream of a process waits this long for the listener to reach the broker, so that
# a notice sent right after the stream's first read is not missed.
LISTENER_READY_WAIT_S = 5.0


def keepalive_s() -> float:
    return float(getattr(settings, "TTS_SSE_KEEPALIVE_S", 15.0))


def error_response(error: ApplicationError) -> JsonResponse:
    """The API's error body (`{"error": {"code", "message", "field", ...}}`)."""
    body = {"error": {"code": error.code, "message": error.message, "field": error.field, **error.extra}}
    response = JsonResponse(body, status=error.status)
    if "retry_after_s" in error.extra:  # a throttle or quota that frees up at a known time
        response["Retry-After"] = str(error.extra["retry_after_s"])
    return response


async def listener_ready(hub: live.JobUpdateHub) -> None:
    if not hub.ready.is_set():
        ready = await asyncio.to_thread(hub.ready.wait, LISTENER_READY_WAIT_S)
        if not ready:
            logger.warning("job update listener not ready; streams fall back to the keep-alive re-read")


async def wait_for_change(changed: asyncio.Event, *, timeout_s: float) -> bool:
    """True when a live update arrived, False when `timeout_s` passed without one."""
    try:
        await asyncio.wait_for(changed.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


# Every database read of the streams runs on this small pool. Django's async ORM would run
# each request's queries on a thread of that request's own (thread-sensitive), so 200 open
# streams would hold 200 database connections; here they share a few.
DB_THREADS = 4
_db_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="stream-db")


def db(func: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """`func` run on the streams' database pool."""
    return sync_to_async(func, thread_sensitive=False, executor=_db_executor)


def _job_reload(job_id: object) -> SynthesisJob | None:
    return SynthesisJob.objects.filter(pk=job_id).first()


job_reload = db(_job_reload)
to_async = db


def close_db_connections(timeout_s: float = 5.0) -> None:
    """Close the connections the pool's threads hold (tests that drop their database)."""
    barrier = threading.Barrier(DB_THREADS, timeout=timeout_s)

    def close_on_this_thread() -> None:
        barrier.wait()  # one task per thread: every thread runs one of them
        connections.close_all()

    for future in [_db_executor.submit(close_on_this_thread) for _ in range(DB_THREADS)]:
        future.result(timeout=timeout_s)
