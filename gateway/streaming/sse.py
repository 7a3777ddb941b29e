"""`GET /api/v1/jobs/{id}/events`: the job's live status as server-sent events.

The current state at once, a `progress` event whenever sentences are stored, and a final
`done` event with the job's representation, then the stream closes. Event ids name the state
(`<attempt>.<sentences done>.<status>`, `<attempt>.done`), so a client that reconnects with
`Last-Event-ID` is sent the state only if it changed meanwhile. A comment line every
`TTS_SSE_KEEPALIVE_S` (15 s) keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from .. import live
from ..errors import ApplicationError
from ..models import AudioSegment, SynthesisJob
from .auth import job_for_read
from .common import db, error_response, job_reload, keepalive_s, listener_ready, to_async, wait_for_change

logger = logging.getLogger(__name__)


def sse_message(*, event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _final_representation(job: SynthesisJob, request: HttpRequest) -> dict[str, Any]:
    from ..apis import JobOutputSerializer  # the API's own representation, not a copy of it

    return dict(JobOutputSerializer(job, context={"request": request}).data)


@db
def _audio_seconds(job: SynthesisJob) -> float:
    if job.audio_duration_s is not None:
        return round(job.audio_duration_s, 3)
    total = AudioSegment.objects.filter(job=job, attempt=job.attempt).aggregate(s=Sum("audio_seconds"))
    return round(total["s"] or 0.0, 3)


async def job_events(*, job: SynthesisJob, request: HttpRequest, last_event_id: str | None) -> AsyncIterator[bytes]:
    hub = live.hub()
    with hub.watch(job.id) as changed:
        await listener_ready(hub)
        sent_id = last_event_id
        current: SynthesisJob | None = job
        while current is not None:
            changed.clear()  # before the read: a notice from now on wakes the next wait
            current = await job_reload(job.pk)
            if current is None:  # deleted meanwhile
                yield sse_message(event="done", data={"id": str(job.pk), "status": "deleted"}, event_id="deleted")
                return
            if current.is_final:
                data = await to_async(_final_representation)(current, request)
                yield sse_message(event="done", data=data, event_id=f"{current.attempt}.done")
                return
            event_id = f"{current.attempt}.{current.sentences_done}.{current.status}"
            if event_id != sent_id:
                data = {
                    "id": str(current.pk),
                    "status": current.status,
                    "attempt": current.attempt,
                    "sentences_done": current.sentences_done,
                    "sentence_count": current.sentence_count,
                    "progress": current.progress,
                    "audio_seconds": await _audio_seconds(current),
                }
                yield sse_message(event="progress", data=data, event_id=event_id)
                sent_id = event_id
            if not await wait_for_change(changed, timeout_s=keepalive_s()):
                yield b": keep-alive\n\n"  # and re-read: a safety net for a lost notice


async def job_events_view(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        job = await job_for_read(request, job_id)
    except ApplicationError as error:
        return error_response(error)
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    response = StreamingHttpResponse(
        job_events(job=job, request=request, last_event_id=last_event_id), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response
