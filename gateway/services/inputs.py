"""Checking a job's input (submit, batch, /validate) and the figures derived from it.

Serializers own the input's shape (types, presence); these functions own the rules: size
limits, the voice, parameter ranges and a text the front end can speak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from tts_contracts import defaults, length_class_for
from vits.errors import (
    EmptyTextError,
    InvalidTextError,
    ParameterError,
    UnknownSpeakerError,
    UnspeakableTextError,
    VitsInputError,
    VoiceNotFoundError,
)
from vits.params import SynthesisParams

from .. import voices
from ..errors import ApplicationError

_PARAM_NAMES = frozenset(SynthesisParams.__dataclass_fields__)


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """One job as a client asked for it, in the shape the serializer checked."""

    text: str
    voice: str | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobInput:
    """Input that passed every check, ready to become a job."""

    text: str
    voice: str
    params: dict[str, Any]
    sentences: list[str]
    length_class: str
    sample_rate: int
    normalized_text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalized_text", " ".join(self.sentences))


_VITS_ERROR_CODES: tuple[tuple[type[VitsInputError], str], ...] = (
    (EmptyTextError, "empty_text"),
    (UnspeakableTextError, "unspeakable_text"),
    (InvalidTextError, "invalid_text"),
    (UnknownSpeakerError, "unknown_speaker"),
    (ParameterError, "invalid_parameter"),
)


def _vits_error_code(error: VitsInputError) -> str:
    return next((code for error_type, code in _VITS_ERROR_CODES if isinstance(error, error_type)), "invalid")


def job_length_class(*, text: str) -> str:
    return length_class_for(
        chars=len(text), short_max_chars=settings.TTS_SHORT_MAX_CHARS, medium_max_chars=settings.TTS_MEDIUM_MAX_CHARS
    )


def job_input_validate(
    *, text: str, voice: str | None = None, params: dict[str, Any] | None = None, field_prefix: str = ""
) -> JobInput:
    """Check one job's input; raise `ApplicationError` naming the field.

    Cheap checks first (size), then the voice config, the parameter ranges and finally the text
    front end, which must find at least one speakable sentence.
    """
    if not text.strip():
        raise ApplicationError("text is empty", code="empty_text", field=f"{field_prefix}text")
    if len(text) > settings.TTS_MAX_TEXT_CHARS:
        raise ApplicationError(
            f"text has {len(text)} characters; the limit is {settings.TTS_MAX_TEXT_CHARS}",
            code="text_too_long",
            field=f"{field_prefix}text",
            status=413,
        )

    voice = voice or settings.TTS_DEFAULT_VOICE
    try:
        voice_info = voices.voice_get(voice_id=voice)
    except VoiceNotFoundError:
        raise ApplicationError(
            f"voice {voice!r} does not exist; GET /api/v1/voices lists the voices",
            code="unknown_voice",
            field=f"{field_prefix}voice",
        ) from None

    params = params or {}
    unknown = sorted(set(params) - _PARAM_NAMES)
    if unknown:
        raise ApplicationError(
            f"unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(_PARAM_NAMES))}",
            code="unknown_parameter",
            field=f"{field_prefix}params.{unknown[0]}",
        )
    try:
        synthesis_params = SynthesisParams.from_dict(params).validate(num_speakers=voice_info.num_speakers)
    except VitsInputError as error:
        raise ApplicationError(
            str(error), code=_vits_error_code(error), field=f"{field_prefix}params.{error.field}"
        ) from None

    try:
        sentences = voices.text_sentences(text=text)
    except VitsInputError as error:
        raise ApplicationError(str(error), code=_vits_error_code(error), field=f"{field_prefix}{error.field}") from None
    if not sentences:
        raise ApplicationError(
            "text has nothing that can be spoken", code="unspeakable_text", field=f"{field_prefix}text"
        )

    return JobInput(
        text=text,
        voice=voice_info.id,
        params={key: value for key, value in synthesis_params.to_dict().items() if value is not None},
        sentences=sentences,
        length_class=job_length_class(text=text),
        sample_rate=int(voice_info.sample_rate),
    )


def job_batch_check_size(*, count: int, total_chars: int = 0) -> None:
    """The batch caps (`TTS_MAX_BATCH` jobs, `TTS_MAX_BATCH_CHARS` characters): 413 beyond them.

    Called before the items are checked one by one, so an oversized batch costs nothing.
    """
    if count > settings.TTS_MAX_BATCH:
        raise ApplicationError(
            f"a batch holds at most {settings.TTS_MAX_BATCH} jobs, got {count}",
            code="batch_too_large",
            field="jobs",
            status=413,
        )
    if total_chars > settings.TTS_MAX_BATCH_CHARS:
        raise ApplicationError(
            f"a batch holds at most {settings.TTS_MAX_BATCH_CHARS} characters of text, got {total_chars}",
            code="batch_too_large",
            field="jobs",
            status=413,
        )


def job_input_estimate_seconds(*, job_input: JobInput) -> float:
    """Roughly how long the audio of `job_input` will be (the /validate answer)."""
    length_scale = float(job_input.params.get("length_scale") or 1.0)
    return defaults.estimate_audio_seconds(chars=len(job_input.normalized_text), length_scale=length_scale)
