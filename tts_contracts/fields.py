"""Field readers for decoding: each takes the raw JSON value and returns it typed and in range,
or raises `ContractError` naming the field. JSON's unbounded integers and non-finite numbers stop
here, before anything reaches a database column."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

MAX_INT = 2**31 - 1  # the range of an integer column; counts and ids on the wire never need more
MAX_STRING = 10_000  # longer text than any id, reason or voice name; job text has its own bound


class ContractError(ValueError):
    """A payload does not follow the wire contract: not JSON, unknown schema, or a bad field."""


def read_int(data: dict[str, Any], key: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{key} must be an integer, got {_show(value)}")
    if not minimum <= value <= maximum:
        raise ContractError(f"{key} must be between {minimum} and {maximum}, got {_show(value)}")
    return value


def read_float(data: dict[str, Any], key: str, *, minimum: float = 0.0, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{key} must be a number, got {_show(value)}")
    number = float(value) if abs(value) < 1e300 else math.inf
    if not math.isfinite(number) or number < minimum:
        raise ContractError(f"{key} must be a finite number >= {minimum}, got {_show(value)}")
    return number


def read_str(
    data: dict[str, Any], key: str, *, max_length: int = MAX_STRING, default: str | None = None, empty: bool = False
) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ContractError(f"{key} must be a string, got {_show(value)}")
    if not empty and not value:
        raise ContractError(f"{key} must not be empty")
    if len(value) > max_length:
        raise ContractError(f"{key} has {len(value)} characters; at most {max_length} are allowed")
    return value


def read_object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError(f"{key} must be an object, got {_show(value)}")
    return value


def read_pcm16(data: dict[str, Any], key: str) -> bytes:
    """Base64 16-bit little-endian mono PCM."""
    text = read_str(data, key, max_length=64 * 1024 * 1024, empty=True)
    try:
        pcm = base64.b64decode(text, validate=True)  # str: no ASCII copy (non-ASCII is a ValueError)
    except (ValueError, UnicodeEncodeError) as error:
        raise ContractError(f"{key} is not valid base64: {error}") from error
    if len(pcm) % 2:
        raise ContractError(f"{key} has an odd number of bytes for 16-bit PCM")
    return pcm


# Stands for a message's audio while the rest of it is encoded (`dumps_with_audio`).
AUDIO_SLOT = "\x00audio\x00"
_AUDIO_SLOT_JSON = json.dumps(AUDIO_SLOT)  # a quote may follow an escape only as \", so no other
# JSON string can hold this text: it marks one place in the output


def dumps_with_audio(data: dict[str, Any], pcm: bytes) -> bytes:
    """Compact JSON of `data`, whose one `AUDIO_SLOT` value stands for `pcm` in base64: the same
    bytes as `json.dumps` of the message with the base64 text in place, without the pass json
    makes over that long string looking for characters to escape (base64 has none) and the
    copies between str and bytes: about 1 ms less per 3 s of 22 kHz audio, each way it is sent."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    head, found, tail = text.partition(_AUDIO_SLOT_JSON)
    if not found or _AUDIO_SLOT_JSON in tail:
        raise ValueError("a message with audio holds AUDIO_SLOT exactly once")
    return b"".join((head.encode("ascii"), b'"', base64.b64encode(pcm), b'"', tail.encode("ascii")))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
