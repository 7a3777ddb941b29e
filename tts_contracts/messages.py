"""The job message and the agent events: one frozen, typed dataclass each, parsed and range-checked
once when decoded.

Every payload is UTF-8 JSON with a `schema` version. Events keep the envelope
`{"schema", "type", "job_id", "attempt", "seq", "agent_id", "sent_at", "data": {...}}`; the typed
fields of each kind travel in `data`. One message on the events topic holds one event, or several
consecutive events of one job as `{"schema", "type": "events", "events": [event, ...]}` (each as
it would travel alone): a short job's `started`, segment and `completed` are one message, one
confirmation and one delivery instead of three. A payload that does not decode raises
`ContractError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from .classes import LENGTH_CLASSES
from .fields import (
    AUDIO_SLOT,
    ContractError,
    dumps_with_audio,
    read_float,
    read_int,
    read_object,
    read_pcm16,
    read_str,
)

SCHEMA_VERSION = 1
MAX_AGENT_ID_CHARS = 200
MAX_JOB_ID_CHARS = 64
MAX_REASON_CHARS = 2000

EventType = Literal["started", "preview", "segment", "completed", "failed", "heartbeat"]

# Stable failure codes a `failed` event (and so a failed job) carries beside its readable reason.
FAILURE_CODES: tuple[str, ...] = (
    "invalid_input",  # the text or parameters cannot be synthesized; retrying cannot help
    "synthesis_error",  # the model raised on every attempt
    "time_limit",  # no progress within the job's time limit
    "agent_crashed_repeatedly",  # deliveries kept dying with their agent (out of memory, kill)
    "publish_failed",  # the agent could not publish its events
    "storage_full",  # the gateway could not store the audio
    "stalled",  # no agent reported the job within the watchdog's budget
    "cancelled",
)


def _reject_constant(name: str) -> float:
    raise ContractError(f"{name} is not a JSON number")


def _loads(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ContractError(f"payload is not UTF-8 JSON: {error}") from error
    if not isinstance(data, dict):
        raise ContractError("payload is not a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise ContractError(f"unknown schema version {data.get('schema')!r}, expected {SCHEMA_VERSION}")
    return data


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _read_params(data: dict[str, Any]) -> dict[str, float | int | None]:
    params = read_object(data, "params")
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ContractError(f"params.{name} must be a number or null, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ContractError(f"params.{name} must be finite")
        if isinstance(value, int) and abs(value) > 2**63:
            raise ContractError(f"params.{name} is out of range")
    return params


@dataclass(frozen=True, kw_only=True)
class JobMessage:
    """Everything an agent needs to synthesize one job attempt; it never reads the database.

    Published to the topic of its queue with partition key `job_id`. `params` holds
    `vits.SynthesisParams` fields (None = voice default). `submitted_at` is epoch seconds at the
    gateway, for the queue-wait metric.
    """

    job_id: str
    attempt: int
    text: str
    voice: str
    length_class: str
    params: dict[str, Any] = field(default_factory=dict)
    submitted_at: float = 0.0

    def to_bytes(self) -> bytes:
        return _dumps({**asdict(self), "schema": SCHEMA_VERSION})

    @classmethod
    def from_bytes(cls, payload: bytes) -> JobMessage:
        data = _loads(payload)
        length_class = read_str(data, "length_class")
        if length_class not in LENGTH_CLASSES:
            raise ContractError(f"length_class must be one of {', '.join(LENGTH_CLASSES)}, got {length_class!r}")
        return cls(
            job_id=read_str(data, "job_id", max_length=MAX_JOB_ID_CHARS),
            attempt=read_int(data, "attempt", minimum=1),
            text=read_str(data, "text", max_length=10_000_000),
            voice=read_str(data, "voice", max_length=200, empty=True),
            length_class=length_class,
            params=_read_params(data),
            submitted_at=read_float(data, "submitted_at", default=0.0),
        )


@dataclass(frozen=True, kw_only=True)
class JobEvent:
    """The envelope every event kind shares; subclasses add the typed `data` fields.

    `seq` counts the events of one delivery of the job from 0. A redelivered job starts again at
    0 and replays its sentences from the cache, so the gateway applies events idempotently.
    """

    kind: ClassVar[EventType]

    job_id: str
    attempt: int
    seq: int
    agent_id: str = ""
    sent_at: float = 0.0

    @property
    def type(self) -> EventType:
        return self.kind

    def _data(self) -> dict[str, Any]:
        envelope = {item.name for item in fields(JobEvent)}
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name not in envelope}

    def to_bytes(self) -> bytes:
        message = {
            "schema": SCHEMA_VERSION,
            "type": self.kind,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "seq": self.seq,
            "agent_id": self.agent_id,
            "sent_at": self.sent_at,
            "data": self._data(),
        }
        audio = self._audio()
        return _dumps(message) if audio is None else dumps_with_audio(message, audio)

    def _audio(self) -> bytes | None:
        """The PCM that `_data` left as `AUDIO_SLOT`, if any."""
        return None

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class StartedEvent(JobEvent):
    kind: ClassVar[EventType] = "started"

    sentence_count: int
    sample_rate: int
    voice: str = ""
    model_checksum: str = ""
    queue_wait_s: float = 0.0

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "sentence_count": read_int(data, "sentence_count", minimum=1),
            "sample_rate": read_int(data, "sample_rate", minimum=1, maximum=768_000),
            "voice": read_str(data, "voice", max_length=200, default="", empty=True),
            "model_checksum": read_str(data, "model_checksum", max_length=128, default="", empty=True),
            "queue_wait_s": read_float(data, "queue_wait_s", default=0.0),
        }


@dataclass(frozen=True, kw_only=True)
class SegmentEvent(JobEvent):
    """Audio of sentences `first_sentence` .. `first_sentence + sentence_count - 1`, 16-bit PCM."""

    kind: ClassVar[EventType] = "segment"

    first_sentence: int
    sentence_count: int
    sample_rate: int
    pcm: bytes = field(repr=False)
    cached_sentences: int = 0

    @property
    def audio_seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    def _data(self) -> dict[str, Any]:
        data = super()._data()
        del data["pcm"]
        data["audio_b64"] = AUDIO_SLOT
        data["audio_seconds"] = round(self.audio_seconds, 4)
        return data

    def _audio(self) -> bytes:
        return self.pcm

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "first_sentence": read_int(data, "first_sentence"),
            "sentence_count": read_int(data, "sentence_count", minimum=1),
            "sample_rate": read_int(data, "sample_rate", minimum=1, maximum=768_000),
            "pcm": read_pcm16(data, "audio_b64"),
            "cached_sentences": read_int(data, "cached_sentences") if "cached_sentences" in data else 0,
        }


@dataclass(frozen=True, kw_only=True)
class PreviewEvent(JobEvent):
    """The first chunks of the job's first sentence, 16-bit PCM, sent before that sentence is done.

    A prefix of the attempt's segment 0 as this delivery will send it (the chunks of windowed
    decoding joined equal the whole sentence), so a stream can play it at once and go on from
    its last frame when segment 0 arrives. Only for a first sentence long enough to be worth a
    message (the agent's TTS_PREVIEW_MIN_SECONDS); never part of the job's stored audio.
    """

    kind: ClassVar[EventType] = "preview"

    sentence: int = 0
    sample_rate: int
    pcm: bytes = field(repr=False)

    def _data(self) -> dict[str, Any]:
        data = super()._data()
        del data["pcm"]
        data["audio_b64"] = AUDIO_SLOT
        return data

    def _audio(self) -> bytes:
        return self.pcm

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        sentence = read_int(data, "sentence") if "sentence" in data else 0
        if sentence != 0:
            raise ContractError(f"sentence must be 0 (a preview is of the first sentence), got {sentence}")
        pcm = read_pcm16(data, "audio_b64")
        if not pcm:
            raise ContractError("audio_b64 must not be empty")
        return {
            "sentence": sentence,
            "sample_rate": read_int(data, "sample_rate", minimum=1, maximum=768_000),
            "pcm": pcm,
        }


@dataclass(frozen=True, kw_only=True)
class CompletedEvent(JobEvent):
    """The job's last sentence was delivered; totals and timings of this delivery."""

    kind: ClassVar[EventType] = "completed"

    sentence_count: int
    segment_count: int
    sample_rate: int
    audio_seconds: float = 0.0
    synthesis_seconds: float = 0.0
    cached_sentences: int = 0
    first_segment_s: float = 0.0
    job_seconds: float = 0.0
    active_seconds: float = 0.0

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        parsed: dict[str, Any] = {
            "sentence_count": read_int(data, "sentence_count", minimum=1),
            "segment_count": read_int(data, "segment_count", minimum=1),
            "sample_rate": read_int(data, "sample_rate", minimum=1, maximum=768_000),
            "cached_sentences": read_int(data, "cached_sentences") if "cached_sentences" in data else 0,
        }
        for name in ("audio_seconds", "synthesis_seconds", "first_segment_s", "job_seconds", "active_seconds"):
            parsed[name] = read_float(data, name, default=0.0)
        return parsed


@dataclass(frozen=True, kw_only=True)
class FailedEvent(JobEvent):
    """The agent gave up on the job: `reason` is readable by the job's owner."""

    kind: ClassVar[EventType] = "failed"

    reason: str
    error_type: str = ""
    code: str = "synthesis_error"

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        code = read_str(data, "code", max_length=64, default="synthesis_error")
        if code not in FAILURE_CODES:
            raise ContractError(f"code must be one of {', '.join(FAILURE_CODES)}, got {code!r}")
        return {
            "reason": read_str(data, "reason", max_length=MAX_REASON_CHARS),
            "error_type": read_str(data, "error_type", max_length=200, default="", empty=True),
            "code": code,
        }


@dataclass(frozen=True, kw_only=True)
class HeartbeatEvent(JobEvent):
    """The agent still holds the job: sent periodically for every job it holds, running or paused
    behind higher-priority work, so the gateway tells a paused job from a lost one."""

    kind: ClassVar[EventType] = "heartbeat"

    sentences_done: int = 0
    sentence_count: int = 0
    paused: bool = False

    @classmethod
    def _parse_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        paused = data.get("paused", False)
        if not isinstance(paused, bool):
            raise ContractError(f"paused must be true or false, got {paused!r}")
        return {
            "sentences_done": read_int(data, "sentences_done") if "sentences_done" in data else 0,
            "sentence_count": read_int(data, "sentence_count") if "sentence_count" in data else 0,
            "paused": paused,
        }


EVENT_TYPES: dict[str, type[JobEvent]] = {
    kind.kind: kind for kind in (StartedEvent, PreviewEvent, SegmentEvent, CompletedEvent, FailedEvent, HeartbeatEvent)
}
AnyEvent = StartedEvent | PreviewEvent | SegmentEvent | CompletedEvent | FailedEvent | HeartbeatEvent


# The `type` of a message that holds several events (`encode_events`).
EVENTS_MESSAGE_TYPE = "events"
# Events in one message at most: an agent sends what one step made (a held-back `started`, a
# segment, the outcome); a longer list is no agent's.
MAX_EVENTS_PER_MESSAGE = 16


def encode_events(events: Sequence[JobEvent]) -> bytes:
    """One message for consecutive events of one job, in order (one event: its own bytes)."""
    if not events:
        raise ValueError("a message holds at least one event")
    if len(events) > MAX_EVENTS_PER_MESSAGE:
        raise ValueError(f"a message holds at most {MAX_EVENTS_PER_MESSAGE} events, got {len(events)}")
    if len({event.job_id for event in events}) > 1:
        raise ValueError("the events of one message belong to one job")
    if len(events) == 1:
        return events[0].to_bytes()
    # Each event's bytes as they are (its audio already in base64), between the list's brackets.
    head, tail = _dumps({"schema": SCHEMA_VERSION, "type": EVENTS_MESSAGE_TYPE, "events": []}).split(b"[]")
    return head + b"[" + b",".join(event.to_bytes() for event in events) + b"]" + tail


def decode_events(payload: bytes) -> list[JobEvent]:
    """Bytes from the events topic -> its events in order (one, or those `encode_events` put in
    one message), or `ContractError` saying what is wrong with any of them."""
    data = _loads(payload)
    if data.get("type") != EVENTS_MESSAGE_TYPE:
        return [_event_of(data)]
    items = data.get("events")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_EVENTS_PER_MESSAGE:
        raise ContractError(f"events must be a list of 1 to {MAX_EVENTS_PER_MESSAGE} events")
    events: list[JobEvent] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("schema") != SCHEMA_VERSION:
            raise ContractError(f"events[{index}] is not an event of schema {SCHEMA_VERSION}")
        try:
            events.append(_event_of(item))
        except ContractError as error:
            raise ContractError(f"events[{index}]: {error}") from error
    if len({event.job_id for event in events}) > 1:
        raise ContractError("the events of one message belong to one job")
    return events


def decode_event(payload: bytes) -> JobEvent:
    """Bytes of one event -> the typed event, or `ContractError` saying what is wrong."""
    return _event_of(_loads(payload))


def _event_of(data: dict[str, Any]) -> JobEvent:
    kind = data.get("type")
    event_type = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if event_type is None:
        raise ContractError(f"unknown event type {kind!r}")
    return event_type(
        job_id=read_str(data, "job_id", max_length=MAX_JOB_ID_CHARS),
        attempt=read_int(data, "attempt", minimum=1),
        seq=read_int(data, "seq"),
        agent_id=read_str(data, "agent_id", max_length=MAX_AGENT_ID_CHARS, default="", empty=True),
        sent_at=read_float(data, "sent_at", default=0.0),
        **event_type._parse_data(read_object(data, "data")),
    )


@dataclass(frozen=True, kw_only=True)
class JobEnded:
    """Gateway -> every agent on the control topic: this attempt of the job is over (cancelled,
    failed or succeeded); an agent holding it stops within one sentence and drops its pending
    messages unsynthesized."""

    job_id: str
    attempt: int
    status: str

    def to_bytes(self) -> bytes:
        return _dumps({"schema": SCHEMA_VERSION, "type": "job_ended", **asdict(self)})

    @classmethod
    def from_bytes(cls, payload: bytes) -> JobEnded:
        data = _loads(payload)
        if data.get("type") != "job_ended":
            raise ContractError(f"unknown control message type {data.get('type')!r}")
        return cls(
            job_id=read_str(data, "job_id", max_length=MAX_JOB_ID_CHARS),
            attempt=read_int(data, "attempt", minimum=1),
            status=read_str(data, "status", max_length=32),
        )


def claim_key(*, job_id: str, attempt: int, prefix: str = "tts") -> str:
    """The Redis key an agent sets (NX, with an expiry it renews) before working on a job attempt,
    so two deliveries of one job never synthesize at the same time."""
    return f"{prefix}:claim:{job_id}:{attempt}"
