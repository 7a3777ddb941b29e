"""Pieces the streaming views share: waiting on live updates, error responses, settings."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse

from .. import live
from ..errors import ApplicationError
from ..models import SynthesisJob

logger = logging.getLogger(__name__)

# The first stream of a process waits this long for the listener to reach the broker, so that
# a notice sent right after the stream's first read is not missed.
LISTENER_READY_WAIT_S = 5.0


def keepalive_s() -> float:
    return float(getattr(settings, "TTS_SSE_KEEPALIVE_S", 15.0))


def error_response(error: ApplicationError) -> JsonResponse:
    """The API's error body (`{"error": {"code", "message", "field", ...}}`)."""
    body = {"error": {"code": error.code, "message": error.message, "field": error.field, **error.extra}}
    return JsonResponse(body, status=error.status)


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


async def job_reload(job_id: object) -> SynthesisJob | None:
    return await SynthesisJob.objects.filter(pk=job_id).afirst()


to_async = sync_to_async
