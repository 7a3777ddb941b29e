"""An OpenAI-compatible speech API: `POST /v1/audio/speech`, `GET /v1/models`, `GET /v1/audio/voices`.

A speech request is a normal job (stored, listed, classed by length, prioritized) whose audio
streams back while it is made. `speed` (0.25-4.0) becomes `length_scale = 1 / speed`;
`instructions` is accepted and ignored (VITS has no prompt). OpenAI's voice names map to this
service's voices through `TTS_OPENAI_VOICES` (table in docs/STREAMING.md); the service's own
voice ids are accepted as they are. Errors use OpenAI's body shape
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import formats, selectors, services
from .downloads import StoredFileResponse
from .errors import ApplicationError
from .models import JobStatus, SynthesisJob
from .streaming.audio import job_audio_chunks, stream_response
from .streaming.auth import caller_get, caller_throttle

logger = logging.getLogger(__name__)

OPENAI_MODELS = ("tts-1", "tts-1-hd")
OPENAI_VOICE_NAMES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip
# OpenAI's response_format values; `aac` has no libsndfile encoder and is refused with a 400.
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
SPEED_RANGE = (0.25, 4.0)
MAX_INPUT_CHARS = 4096  # OpenAI's own limit on `input`


def openai_error(
    message: str, *, status: int, param: str | None = None, code: str | None = None, retry_after_s: int | None = None
) -> JsonResponse:
    kind = {
        401: "authentication_error",
        404: "not_found_error",
        405: "invalid_request_error",
        409: "invalid_request_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
    response = JsonResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)
    if retry_after_s is not None:
        response["Retry-After"] = str(retry_after_s)
    return response


def _from_application_error(error: ApplicationError) -> JsonResponse:
    param = {"text": "input", "voice": "voice", "params.length_scale": "speed"}.get(error.field or "", error.field)
    return openai_error(
        error.message, status=error.status, param=param, code=error.code, retry_after_s=error.extra.get("retry_after_s")
    )


def _submit(
    *, owner: Any, text: str, voice_id: str, params: dict[str, Any], key: str | None, body: Any
) -> SynthesisJob:
    """A normal job through the services (validation, quotas, outbox); with an `Idempotency-Key`
    a retried request gets the job the first one created, and streams its audio again."""

    def submit() -> list[SynthesisJob]:
        return [services.job_submit(owner=owner, text=text, voice=voice_id, params=params)]

    if key is None:
        return submit()[0]
    jobs, _ = services.job_submit_idempotent(owner=owner, key=key, endpoint="openai-speech", data=body, submit=submit)
    if not jobs:  # the first request's job was deleted meanwhile
        raise ApplicationError("the job of this Idempotency-Key no longer exists", code="not_found", status=404)
    return jobs[0]


def voice_map() -> dict[str, str]:
    """OpenAI voice name -> this service's voice id (settings.TTS_OPENAI_VOICES overrides entries)."""
    mapping = {name: settings.TTS_DEFAULT_VOICE for name in OPENAI_VOICE_NAMES}
    mapping.update(getattr(settings, "TTS_OPENAI_VOICES", {}) or {})
    return mapping


def _voice_ids() -> list[str]:
    return [voice["id"] for voice in selectors.voice_list()]


def _parse(body: Any, voice_ids: list[str]) -> tuple[str, str, dict[str, Any], formats.AudioFormat]:
    if not isinstance(body, dict):
        raise ApplicationError("the body must be a JSON object", field="body")
    model = body.get("model")
    if not isinstance(model, str) or model not in (*OPENAI_MODELS, *voice_ids):
        raise ApplicationError(
            f"unknown model {model!r}; one of {', '.join((*OPENAI_MODELS, *voice_ids))}",
            code="model_not_found",
            field="model",
        )
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise ApplicationError("input must be a non-empty string", field="input")
    if len(text) > MAX_INPUT_CHARS:
        raise ApplicationError(f"input holds at most {MAX_INPUT_CHARS} characters, got {len(text)}", field="input")
    voice = body.get("voice")
    if isinstance(voice, dict):  # newer clients may send {"id": ...}
        voice = voice.get("id")
    mapping = voice_map()
    if not isinstance(voice, str) or (voice not in mapping and voice not in voice_ids):
        raise ApplicationError(
            f"unknown voice {voice!r}; one of {', '.join([*mapping, *voice_ids])}",
            code="voice_not_found",
            field="voice",
        )
    voice_id = mapping.get(voice, voice)
    if model in voice_ids and voice in mapping:
        voice_id = model  # a project voice named as the model picks the voice behind an OpenAI name
    response_format = body.get("response_format", "mp3")
    if response_format not in OPENAI_FORMATS or response_format not in formats.FORMATS:
        raise ApplicationError(
            f"unsupported response_format {response_format!r}; supported: {', '.join(formats.SUPPORTED)}",
            code="unsupported_format",
            field="response_format",
        )
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise ApplicationError(f"speed must be a number from {SPEED_RANGE[0]} to {SPEED_RANGE[1]}", field="speed")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ApplicationError("instructions must be a string", field="instructions")
    params = {"length_scale": round(1.0 / float(speed), 6)} if speed != 1.0 else {}
    return text, voice_id, params, formats.FORMATS[response_format]


@csrf_exempt
async def speech_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return openai_error("use POST", status=405)
    try:
        caller = await caller_get(request)
    except ApplicationError as error:
        return openai_error(error.message, status=401, code="invalid_api_key")
    try:
        await caller_throttle(caller=caller, scope="submit")  # a speech request is a job submission
    except ApplicationError as error:
        return _from_application_error(error)
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return openai_error("the body is not valid JSON", status=400, param="body")
    try:
        voice_ids = await sync_to_async(_voice_ids)()
        text, voice_id, params, fmt = _parse(body, voice_ids)
        job = await sync_to_async(_submit)(
            owner=caller.user,
            text=text,
            voice_id=voice_id,
            params=params,
            key=request.headers.get("Idempotency-Key"),
            body=body,
        )
    except ApplicationError as error:
        return _from_application_error(error)
    logger.info("speech job %s (%s, %d chars) for user %s", job.id, fmt.name, len(text), caller.user.pk)
    if fmt.name not in formats.STREAMABLE:  # FLAC: the whole file once the job is done (stored once)
        return await _whole_file_response(job=job, fmt=fmt)
    chunks = job_audio_chunks(job=job, fmt=fmt)
    # Hold the status line until the first audio (or the end): a job that fails before any
    # audio gets an error body, not a 200 with an empty file.
    first = b""
    async for chunk in chunks:
        first = chunk
        break
    else:
        job = await SynthesisJob.objects.aget(pk=job.pk)
        if job.status != JobStatus.SUCCEEDED:
            return openai_error(f"synthesis {job.status}: {job.error or 'no audio'}", status=500, code=job.status)

    async def all_chunks() -> Any:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    response = stream_response(chunks=all_chunks(), fmt=fmt, job=job)
    return response


async def _whole_file_response(*, job: SynthesisJob, fmt: formats.AudioFormat) -> HttpResponse:
    async for _ in job_audio_chunks(job=job, fmt=formats.FORMATS["pcm"]):
        pass  # waits for the job's end, woken by live updates like any stream
    job = await SynthesisJob.objects.aget(pk=job.pk)
    if job.status != JobStatus.SUCCEEDED:
        return openai_error(f"synthesis {job.status}: {job.error or 'no audio'}", status=500, code=job.status)
    name, _ = await sync_to_async(services.job_audio_encode)(job=job, fmt=fmt)
    opened = await sync_to_async(services.stored_audio_open)(storage=job.audio.storage, name=name)
    response = StoredFileResponse(opened, content_type=fmt.content_type)
    response["X-Job-Id"] = str(job.pk)
    return response


async def _refuse_reader(request: HttpRequest) -> HttpResponse | None:
    """The OpenAI-shaped error for a caller who may not list models or voices now, else None."""
    try:
        caller = await caller_get(request)
    except ApplicationError as error:
        return openai_error(error.message, status=401, code="invalid_api_key")
    try:
        await caller_throttle(caller=caller, scope="read")
    except ApplicationError as error:
        return _from_application_error(error)
    return None


async def models_view(request: HttpRequest) -> HttpResponse:
    refused = await _refuse_reader(request)
    if refused is not None:
        return refused
    voice_ids = await sync_to_async(_voice_ids)()
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "tts-service"}
        for name in (*OPENAI_MODELS, *voice_ids)
    ]
    return JsonResponse({"object": "list", "data": data})


async def voices_view(request: HttpRequest) -> HttpResponse:
    refused = await _refuse_reader(request)
    if refused is not None:
        return refused
    voice_ids = await sync_to_async(_voice_ids)()
    mapping = voice_map()
    voices = [{"id": name, "name": name, "voice": target, "openai_name": True} for name, target in mapping.items()]
    voices += [{"id": voice_id, "name": voice_id, "voice": voice_id, "openai_name": False} for voice_id in voice_ids]
    return JsonResponse({"object": "list", "voices": voices, "data": voices})
