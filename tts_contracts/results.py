"""The public results topic (`tts-results`, version 1): speech for downstream services as it is made.

Separate from the internal events topic so that the agent <-> gateway contract can change
without breaking consumers outside the service. Every message is UTF-8 JSON matching
`schemas/tts-results.v1.json` (the file is the published contract; a test validates every
message against it). Two kinds:

- `segment`: the audio of sentences `first_sentence` .. `first_sentence + sentence_count - 1`
  of one job attempt, as base64 16-bit little-endian mono PCM at `sample_rate`.
- `final`: the job ended (`succeeded` / `failed` / `cancelled`), with duration, audio URL and
  error code.

Delivery is at least once: a consumer keys segments by (job_id, attempt, first_sentence) and
concatenates them in `first_sentence` order; the result is sample-identical to the stored WAV.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .fields import AUDIO_SLOT, ContractError, dumps_with_audio

RESULTS_SCHEMA_VERSION = 1
RESULTS_TOPIC_NAME = "results-v1"  # persistent://{tenant}/{namespace}/{prefix}-results-v1
SCHEMA_PATH = Path(__file__).with_name("schemas") / "tts-results.v1.json"

FinalStatus = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class ResultSegment:
    job_id: str
    attempt: int
    first_sentence: int
    sentence_count: int
    sample_rate: int
    pcm: bytes
    sent_at: float

    def to_dict(self, *, audio: str | None = None) -> dict[str, Any]:
        """The message as a dict; `audio` stands in for the base64 text of the PCM if given."""
        data = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "pcm"}
        data["audio_b64"] = base64.b64encode(self.pcm).decode("ascii") if audio is None else audio
        return {"schema": RESULTS_SCHEMA_VERSION, "type": "segment", **data, "encoding": "pcm_s16le"}


@dataclass(frozen=True, kw_only=True)
class ResultFinal:
    job_id: str
    attempt: int
    status: FinalStatus
    sentence_count: int | None
    sample_rate: int | None
    duration_s: float | None
    audio_url: str | None
    error_code: str | None
    error: str
    sent_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"schema": RESULTS_SCHEMA_VERSION, "type": "final", **asdict(self)}


AnyResult = ResultSegment | ResultFinal


def encode_result(result: AnyResult) -> bytes:
    if isinstance(result, ResultSegment):  # the same bytes, with less work on a long string
        return dumps_with_audio(result.to_dict(audio=AUDIO_SLOT), result.pcm)
    return json.dumps(result.to_dict(), separators=(",", ":")).encode("utf-8")


def decode_result(payload: bytes) -> AnyResult:
    """Parse one message of the results topic; `ContractError` when it is not version 1."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"result is not UTF-8 JSON: {error}") from error
    if not isinstance(data, dict) or data.get("schema") != RESULTS_SCHEMA_VERSION:
        raise ContractError(f"unknown results schema {data.get('schema') if isinstance(data, dict) else data!r}")
    kind = data.pop("type", None)
    data.pop("schema")
    try:
        if kind == "segment":
            data.pop("encoding", None)
            data["pcm"] = base64.b64decode(data.pop("audio_b64"), validate=True)
            return ResultSegment(**data)
        if kind == "final":
            return ResultFinal(**data)
    except (TypeError, KeyError, ValueError) as error:
        raise ContractError(f"malformed {kind} result: {error}") from error
    raise ContractError(f"unknown result type {kind!r}")


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a results message, as published in the repository."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
