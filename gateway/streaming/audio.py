"""`GET /api/v1/jobs/{id}/audio/stream?format=...`: the job's audio while it is made.

Segments are sent in sentence order as the consumer stores them (the first segment of every
job is its first sentence alone, see synthesis_agent/segments.py), woken by live updates. A long
first sentence comes earlier: its first chunks arrive as the attempt's preview, which is sent
at once, and segment 0 then goes on from the preview's last frame (the preview is a prefix of
it; should another delivery of the attempt have made segment 0, the join is logged).
Once the job has succeeded its segments are gone (assembled into the WAV): the rest is read
from the stored WAV from the first frame not yet sent, so the client gets exactly the stored
samples. A job that fails or is cancelled ends the stream early (the SSE stream says why).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import soundfile
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from .. import formats, live, services
from ..errors import ApplicationError
from ..models import AudioPreview, AudioSegment, JobStatus, SynthesisJob
from .auth import job_for_read
from .common import db, error_response, job_reload, keepalive_s, listener_ready, to_async, wait_for_change

logger = logging.getLogger(__name__)

FILE_BLOCK_FRAMES = 64 * 1024


@dataclass
class StreamState:
    next_sentence: int = 0
    frames_sent: int = 0
    ended_status: str = ""
    preview: bytes = b""  # the attempt's preview, once sent: segment 0 goes on after it


@db
def _segment(*, job_id: object, attempt: int, first_sentence: int) -> AudioSegment | None:
    return AudioSegment.objects.filter(job_id=job_id, attempt=attempt, first_sentence=first_sentence).first()


@db
def _preview(*, job_id: object, attempt: int) -> AudioPreview | None:
    return AudioPreview.objects.filter(job_id=job_id, attempt=attempt).first()


def _after_preview(segment: AudioSegment, *, preview: bytes) -> bytes:
    """Segment 0's PCM past what its preview already sent."""
    pcm = bytes(segment.pcm)
    if pcm[: len(preview)] != preview:
        logger.info(
            "job %s attempt %d: segment 0 does not begin with the preview streamed (another delivery made it); "
            "the stream goes on from the preview's %d frames",
            segment.job_id,
            segment.attempt,
            len(preview) // 2,
        )
    return pcm[len(preview) :]


def _read_wav_from(job: SynthesisJob, *, first_frame: int) -> tuple[int, list[bytes]]:
    with (
        services.stored_audio_open(storage=job.audio.storage, name=job.audio.name) as handle,
        soundfile.SoundFile(handle) as wav,
    ):
        wav.seek(first_frame)
        blocks = []
        while True:
            block = wav.read(FILE_BLOCK_FRAMES, dtype="int16")
            if not len(block):
                break
            blocks.append(block.tobytes())
        return wav.samplerate, blocks


async def job_audio_chunks(
    *, job: SynthesisJob, fmt: formats.AudioFormat, state: StreamState | None = None
) -> AsyncIterator[bytes]:
    """Encoded audio of `job` as it is produced; ends when the job ends."""
    state = state or StreamState()
    encoder: formats.StreamEncoder | None = None
    hub = live.hub()
    with hub.watch(job.id, kind="audio") as changed:
        await listener_ready(hub)
        attempt = job.attempt
        while True:
            changed.clear()
            current = await job_reload(job.pk)
            if current is None or current.attempt != attempt:
                state.ended_status = "deleted" if current is None else "retried"
                break
            if current.status == JobStatus.SUCCEEDED and current.audio:
                sample_rate, blocks = await to_async(_read_wav_from)(current, first_frame=state.frames_sent)
                encoder = encoder or formats.StreamEncoder(fmt, sample_rate=sample_rate)
                for block in blocks:
                    state.frames_sent += len(block) // 2
                    chunk = encoder.feed(block)
                    if chunk:
                        yield chunk
                state.ended_status = current.status
                break
            if current.is_final:
                state.ended_status = current.status
                break
            while True:
                segment = await _segment(job_id=job.pk, attempt=attempt, first_sentence=state.next_sentence)
                if segment is None:
                    break
                encoder = encoder or formats.StreamEncoder(fmt, sample_rate=segment.sample_rate)
                pcm = _after_preview(segment, preview=state.preview) if state.next_sentence == 0 else bytes(segment.pcm)
                state.next_sentence += segment.sentence_count
                state.frames_sent += len(pcm) // 2
                chunk = encoder.feed(pcm)
                if chunk:
                    yield chunk
            if state.next_sentence == 0 and not state.preview and current.preview_stored:
                preview = await _preview(job_id=job.pk, attempt=attempt)
                if preview is not None and preview.pcm:
                    encoder = encoder or formats.StreamEncoder(fmt, sample_rate=preview.sample_rate)
                    state.preview = bytes(preview.pcm)
                    state.frames_sent += len(state.preview) // 2
                    chunk = encoder.feed(state.preview)
                    if chunk:
                        yield chunk
                    continue  # segment 0 may have come meanwhile: look again before waiting
            await wait_for_change(changed, timeout_s=keepalive_s())
    if encoder is None and state.ended_status == JobStatus.SUCCEEDED:
        encoder = formats.StreamEncoder(fmt, sample_rate=job.sample_rate or 22050)
    if encoder is not None:
        tail = encoder.finish()
        if tail:
            yield tail
    if state.ended_status != JobStatus.SUCCEEDED:
        logger.info("audio stream of job %s ended early: job %s", job.pk, state.ended_status)


def stream_response(
    *, chunks: AsyncIterator[bytes], fmt: formats.AudioFormat, job: SynthesisJob
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=fmt.content_type)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Job-Id"] = str(job.pk)
    response["Content-Disposition"] = f'inline; filename="{job.pk}.{fmt.extension}"'
    if fmt.name == "pcm":
        response["X-Sample-Rate"] = str(job.sample_rate or 22050)
    return response


async def job_audio_stream_view(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        job = await job_for_read(request, job_id)
        fmt = formats.negotiate(query_format=request.GET.get("format"), accept=request.headers.get("Accept"))
        if fmt.name not in formats.STREAMABLE:
            raise formats.unsupported(fmt.name, supported=formats.STREAMABLE)
    except ApplicationError as error:
        return error_response(error)
    if job.is_final and job.status != JobStatus.SUCCEEDED:
        return error_response(
            ApplicationError(
                f"the audio is not available: the job is {job.status}",
                code="audio_not_ready",
                field="status",
                status=409,
                extra={"status": job.status},
            )
        )
    return stream_response(chunks=job_audio_chunks(job=job, fmt=fmt), fmt=fmt, job=job)
