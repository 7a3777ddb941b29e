"""Wire format between the gateway and the synthesis agents.

Pure data: no Django, no Pulsar, no torch. The gateway imports this module to build job
messages and to parse events, the agent to do the reverse, so both sides share one schema.
Every payload is UTF-8 JSON with a ``schema`` version; a consumer rejects versions it
does not know instead of guessing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

LengthClass = Literal["short", "medium", "long"]
LENGTH_CLASSES: tuple[str, ...] = ("short", "medium", "long")  # priority order, short first

EventType = Literal["started", "segment", "completed", "failed"]


class ProtocolError(ValueError):
    """A payload is not valid JSON of a known schema version and shape."""


def _loads(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"payload is not UTF-8 JSON: {error}") from error
    if not isinstance(data, dict):
        raise ProtocolError("payload is not a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise ProtocolError(f"unknown schema version {data.get('schema')!r}, expected {SCHEMA_VERSION}")
    return data


@dataclass(frozen=True)
class JobMessage:
    """Everything an agent needs to synthesize one job attempt; it never reads the database.

    Published to the topic of `length_class` with partition key `job_id`.
    `params` holds `vits.params.SynthesisParams` fields (None = voice default).
    `submitted_at` is epoch seconds at the gateway, used for the queue-wait metric.
    """

    job_id: str
    attempt: int
    text: str
    voice: str
    length_class: str
    params: dict[str, Any] = field(default_factory=dict)
    submitted_at: float = 0.0
    schema: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, payload: bytes) -> JobMessage:
        data = _loads(payload)
        try:
            return cls(
                job_id=str(data["job_id"]),
                attempt=int(data["attempt"]),
                text=str(data["text"]),
                voice=str(data["voice"]),
                length_class=str(data["length_class"]),
                params=dict(data.get("params") or {}),
                submitted_at=float(data.get("submitted_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"job message is missing or has a bad field: {error}") from error


@dataclass(frozen=True)
class JobEvent:
    """One event of one job attempt, published on the events topic with partition key `job_id`.

    `seq` counts the events of one delivery of the job, from 0. A redelivered job (another
    agent after a crash) starts again at 0 and replays its sentences from the cache, so the
    gateway must treat events idempotently: `segment` events are keyed by
    (job_id, attempt, first_sentence), and a `completed` for a job that is already final is
    ignored.

    `data` by type:
    - started:   sentence_count, sample_rate, voice, model_checksum, queue_wait_s
    - segment:   first_sentence, sentence_count, sample_rate, audio_b64 (PCM 16-bit LE mono),
                 audio_seconds, cached_sentences
    - completed: sentence_count, segment_count, sample_rate, audio_seconds,
                 synthesis_seconds, cached_sentences, first_segment_s (start to first segment)
    - failed:    reason (readable by the job's owner), error_type
    """

    type: str
    job_id: str
    attempt: int
    seq: int
    agent_id: str
    sent_at: float
    data: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, payload: bytes) -> JobEvent:
        data = _loads(payload)
        try:
            event = cls(
                type=str(data["type"]),
                job_id=str(data["job_id"]),
                attempt=int(data["attempt"]),
                seq=int(data["seq"]),
                agent_id=str(data.get("agent_id", "")),
                sent_at=float(data.get("sent_at") or 0.0),
                data=dict(data.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"job event is missing or has a bad field: {error}") from error
        if event.type not in ("started", "segment", "completed", "failed"):
            raise ProtocolError(f"unknown event type {event.type!r}")
        return event


def encode_pcm16(pcm: bytes) -> str:
    """Base64 text of raw PCM bytes, for a `segment` event."""
    return base64.b64encode(pcm).decode("ascii")


def decode_pcm16(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as error:
        raise ProtocolError(f"segment audio is not valid base64: {error}") from error
