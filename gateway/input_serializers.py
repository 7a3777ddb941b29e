"""The API's input shapes, strict about JSON types, and stating every limit in the schema.

Serializers own the shape (a string is a string, a number a finite number in range); the
services still check the content (voice exists, speakable text, total batch size). Limits
are read from settings when a serializer is built, so the schema shows the configured ones.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from vits.params import LENGTH_SCALE_RANGE, NOISE_SCALE_RANGE, NOISE_W_RANGE, SEED_RANGE

from .errors import ApplicationError

# name -> (JSON type, minimum, maximum, description)
PARAM_SPECS: dict[str, tuple[str, float | int, float | int | None, str]] = {
    "length_scale": ("number", *LENGTH_SCALE_RANGE, "speaking rate: larger is slower"),
    "noise_scale": ("number", *NOISE_SCALE_RANGE, "variation of the voice"),
    "noise_w": ("number", *NOISE_W_RANGE, "variation of the phoneme durations"),
    "speaker": ("integer", 0, None, "speaker id of a multi-speaker voice (below its num_speakers)"),
    "seed": ("integer", *SEED_RANGE, "same seed, same audio"),
}


def params_json_schema() -> dict[str, Any]:
    properties = {}
    for name, (json_type, low, high, description) in PARAM_SPECS.items():
        prop: dict[str, Any] = {"type": json_type, "minimum": low, "nullable": True, "description": description}
        if high is not None:
            prop["maximum"] = high
        properties[name] = prop
    return {
        "type": "object",
        "nullable": True,
        "additionalProperties": False,
        "properties": properties,
        "description": "Synthesis parameters; all optional, null = the voice's default.",
    }


def _param_error(name: str, message: str, code: str = "invalid_parameter") -> serializers.ValidationError:
    return serializers.ValidationError({name: [ErrorDetail(message, code=code)]})


def _check_param(name: str, value: Any) -> Any:
    json_type, low, high, _ = PARAM_SPECS[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        code = "unknown_speaker" if name == "speaker" else "invalid_parameter"
        raise _param_error(name, f"{name} must be {'an integer' if json_type == 'integer' else 'a number'}", code)
    if json_type == "integer" and not isinstance(value, int):
        code = "unknown_speaker" if name == "speaker" else "invalid_parameter"
        raise _param_error(name, f"{name} must be an integer, got {value!r}", code)
    if isinstance(value, float) and not math.isfinite(value):
        raise _param_error(name, f"{name} must be a finite number")
    # Compare without converting: float() of a 400-digit integer raises OverflowError.
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        shown = value if abs(value) < 1e15 else f"{str(value)[:12]}…"
        code = "unknown_speaker" if name == "speaker" else "invalid_parameter"
        raise _param_error(name, f"{name} must be {bound}, got {shown}", code)
    return value


@extend_schema_field(params_json_schema())
class ParamsField(serializers.Field):
    """`params`: an object of known parameters with JSON types and ranges (see PARAM_SPECS)."""

    default_error_messages = {"invalid": "params must be an object"}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        unknown = sorted(str(key) for key in data if key not in PARAM_SPECS)
        if unknown:
            allowed = ", ".join(sorted(PARAM_SPECS))
            raise _param_error(unknown[0], f"unknown parameter {unknown[0]!r}; allowed: {allowed}", "unknown_parameter")
        return {name: _check_param(name, value) for name, value in data.items()}

    def to_representation(self, value: Any) -> Any:
        return value


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField would take 12 as "12" and True as "True"."""

    default_error_messages = {"invalid_type": "must be a string"}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class _TextField(StrictCharField):
    """The text. Its limits are enforced by the service (400 empty_text, 413 text_too_long:
    clearer than a generic length error); `gateway.schema` states them in the schema."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)


class JobInputSerializer(serializers.Serializer):
    """Shape only; the service checks the content (length, voice, ranges, speakable text)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "text": _TextField(help_text="The text to speak: at least one speakable word."),
            "voice": StrictCharField(
                required=False, allow_blank=True, allow_null=True, help_text="a voice id; default: the default voice"
            ),
            "params": ParamsField(required=False, allow_null=True),
        }


class JobBatchInputSerializer(serializers.Serializer):
    """`{"jobs": [...]}`: the cap is checked before any item is looked at."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "jobs": serializers.ListField(
                child=JobInputSerializer(), min_length=1, max_length=settings.TTS_MAX_BATCH, allow_empty=False
            )
        }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        items = data.get("jobs") if isinstance(data, dict) else None
        if isinstance(items, list) and len(items) > settings.TTS_MAX_BATCH:
            raise ApplicationError(
                f"a batch holds at most {settings.TTS_MAX_BATCH} jobs, got {len(items)}",
                code="batch_too_large",
                field="jobs",
                status=413,
            )
        return super().to_internal_value(data)


def batch_item_count(request: Any) -> int:
    """Throttle cost of a batch: one unit per job (at most the batch cap)."""
    data = request.data
    items = data.get("jobs") if isinstance(data, dict) else None
    return min(len(items), settings.TTS_MAX_BATCH) if isinstance(items, list) and items else 1
