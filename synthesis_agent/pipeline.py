"""One delivery of one job as a sequence of events: the agent's pure domain logic.

`JobRun` turns a job message into `started`, `segment`..., `completed` (or `failed`) events,
one sentence per `step()`, given a voice source, a sentence cache and a clock. It knows
nothing of Pulsar: the worker publishes the events it returns, acks or retries according to
`outcome`, and may pause a run between any two steps (preemption) with no loss, because the
run's progress lives in the run itself. `run_job` drives a run to its end in one call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from vits.errors import UnspeakableTextError, VitsInputError, VoiceNotFoundError
from vits.params import SynthesisParams

from .cache import CachedAudio, SentenceCache, cache_key
from .protocol import LENGTH_CLASSES, JobEvent, JobMessage, ProtocolError, encode_pcm16
from .segments import DEFAULT_TARGET_SECONDS, plan_segments
from .voice import VoiceLike

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class VoiceSource(Protocol):
    def get(self, voice_id: str | None) -> VoiceLike: ...


@dataclass(frozen=True)
class PipelineSettings:
    agent_id: str
    max_attempts: int = 3
    time_limit_s: float = 900.0
    segment_target_seconds: float = DEFAULT_TARGET_SECONDS
    # Classes whose every sentence is its own segment: first audio as early as possible.
    sentence_segment_classes: tuple[str, ...] = ("short",)


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended. `retry`: release the message for redelivery (negative ack);
    otherwise its final event is among the events returned and the message is acked."""

    status: Literal["succeeded", "failed", "retry"]
    reason: str = ""  # metric label: synthesis_error, time_limit, bad_message
    detail: str = ""

    @property
    def final(self) -> bool:
        return self.status != "retry"


@dataclass(frozen=True)
class StepReport:
    events: list[JobEvent]
    source: Literal["cache", "synthesized"] | None = None  # None: no sentence was delivered
    synthesis_s: float = 0.0
    audio_s: float = 0.0


class JobRun:
    """One delivery of one job message. Call `begin()`, then `step()` until `outcome` is set."""

    def __init__(
        self,
        payload: bytes,
        *,
        queue: str,
        redelivery_count: int,
        voices: VoiceSource,
        cache: SentenceCache,
        settings: PipelineSettings,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.payload = payload
        self.queue = queue
        self.redelivery_count = redelivery_count
        self._voices = voices
        self._cache = cache
        self.settings = settings
        self._clock = clock
        self._wall = wall_clock

        self.message: JobMessage | None = None
        self.job_id: str | None = None
        self.attempt = 0
        self.length_class = queue if queue in LENGTH_CLASSES else "unknown"
        self.voice: VoiceLike | None = None
        self.params: dict[str, Any] = {}
        self.sentences: list[str] = []
        self.next_index = 0
        self.outcome: JobOutcome | None = None

        self.started_at = 0.0
        self.active_s = 0.0  # time spent working on this run; paused time does not count
        self.synthesis_s = 0.0
        self.audio_s = 0.0
        self.cached_sentences = 0
        self.segment_count = 0
        self.first_segment_s: float | None = None
        self.queue_wait_s: float | None = None
        self._seq = 0
        self._segment_ends: dict[int, int] = {}  # last sentence of a planned segment -> its first
        self._pending: list[bytes] = []  # PCM of the sentences of the segment being gathered
        self._pending_cached = 0

    # --- state -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def last_attempt(self) -> bool:
        """This delivery is the last one the broker makes before the dead-letter topic."""
        return self.redelivery_count >= self.settings.max_attempts - 1

    @property
    def sentence_count(self) -> int:
        return len(self.sentences)

    # --- events ----------------------------------------------------------------------------

    def _event(self, event_type: str, data: dict[str, Any]) -> JobEvent:
        assert self.job_id is not None
        event = JobEvent(
            type=event_type,
            job_id=self.job_id,
            attempt=self.attempt,
            seq=self._seq,
            agent_id=self.settings.agent_id,
            sent_at=self._wall(),
            data=data,
        )
        self._seq += 1
        return event

    def _fail(self, reason: str, user_reason: str, error_type: str, *, detail: str = "") -> list[JobEvent]:
        self.outcome = JobOutcome("failed", reason, detail or user_reason)
        if self.job_id is None:  # nothing to address a failed event to: ack and log only
            return []
        return [self._event("failed", {"reason": user_reason, "error_type": error_type})]

    def _synthesis_error(self, error: BaseException) -> list[JobEvent]:
        detail = f"{type(error).__name__}: {error}"[:300]
        if not self.last_attempt:
            self.outcome = JobOutcome("retry", "synthesis_error", detail)
            return []
        attempts = self.redelivery_count + 1
        return self._fail(
            "synthesis_error",
            f"Speech synthesis failed after {attempts} attempt{'s' if attempts != 1 else ''}: {detail}",
            type(error).__name__,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def begin(self) -> list[JobEvent]:
        """Parse and validate the message, split the text; returns `[started]` or `[failed]`."""
        self.started_at = self._clock()
        try:
            return self._begin()
        finally:
            self.active_s += self._clock() - self.started_at

    def _begin(self) -> list[JobEvent]:
        try:
            message = JobMessage.from_bytes(self.payload)
        except ProtocolError as error:
            self._recover_identity()
            return self._fail("bad_message", f"The job message could not be read: {error}", "ProtocolError")
        self.message = message
        self.job_id, self.attempt = message.job_id, message.attempt
        if message.length_class in LENGTH_CLASSES:
            self.length_class = message.length_class
        try:
            voice = self._voices.get(message.voice or None)
        except VoiceNotFoundError as error:
            return self._fail("bad_message", f"Voice {message.voice!r} does not exist: {error}", type(error).__name__)
        except Exception as error:  # a voice that exists but fails to load is not the job's fault
            return self._synthesis_error(error)
        self.voice = voice
        try:
            params = SynthesisParams.from_dict(message.params).validate(num_speakers=voice.info.num_speakers)
            self.params = params.to_dict()
            self.sentences = list(voice.prepare(message.text))
        except (VitsInputError, TypeError) as error:
            return self._fail("bad_message", str(error), type(error).__name__)
        except Exception as error:
            return self._synthesis_error(error)
        if not self.sentences:
            return self._fail("bad_message", "The text has nothing that can be spoken.", "EmptyTextError")
        plan = plan_segments(
            self.sentences,
            one_per_sentence=self.length_class in self.settings.sentence_segment_classes,
            length_scale=params.length_scale,
            target_seconds=self.settings.segment_target_seconds,
        )
        self._segment_ends = {first + count - 1: first for first, count in plan}
        if message.submitted_at > 0:
            self.queue_wait_s = max(0.0, self._wall() - message.submitted_at)
        return [
            self._event(
                "started",
                {
                    "sentence_count": len(self.sentences),
                    "sample_rate": voice.info.sample_rate,
                    "voice": voice.info.id,
                    "model_checksum": voice.info.model_checksum,
                    "queue_wait_s": self.queue_wait_s,
                },
            )
        ]

    def _recover_identity(self) -> None:
        """For an unreadable message, the job id if the JSON has one, so the job can be failed."""
        with contextlib.suppress(ValueError, TypeError, UnicodeDecodeError):
            data = json.loads(self.payload.decode("utf-8"))
            if isinstance(data, dict) and isinstance(data.get("job_id"), str) and data["job_id"]:
                self.attempt = int(data.get("attempt") or 0)
                self.job_id = data["job_id"]

    def step(self) -> StepReport:
        """Deliver the next sentence (from the cache or synthesized); may end the run."""
        if self.outcome is not None or self.voice is None or not self._segment_ends:
            raise RuntimeError("step() on a run that has not begun or is already done")
        began = self._clock()
        try:
            return self._step()
        finally:
            self.active_s += self._clock() - began

    def _step(self) -> StepReport:
        assert self.voice is not None
        limit = self.settings.time_limit_s
        if self.active_s > limit:
            return StepReport(
                self._fail(
                    "time_limit",
                    f"The job took longer than {limit:g} s and was stopped "
                    f"after {self.next_index} of {len(self.sentences)} sentences.",
                    "TimeLimitExceeded",
                )
            )
        index = self.next_index
        sentence = self.sentences[index]
        info = self.voice.info
        key = cache_key(voice_id=info.id, model_checksum=info.model_checksum, params=self.params, sentence=sentence)
        cached = self._cache.get(key)
        synthesis_s = 0.0
        if cached is not None and cached.sample_rate == info.sample_rate:
            pcm = cached.pcm
            source: Literal["cache", "synthesized"] = "cache"
            self.cached_sentences += 1
        else:
            began = self._clock()
            try:
                audio = self.voice.synthesize_sentence(sentence, SynthesisParams.from_dict(self.params))
                pcm = audio.to_pcm16_bytes()
            except UnspeakableTextError as error:
                # One sentence of only symbols in a speakable text: silence for it, not a failure.
                logger.warning("sentence %d has nothing to pronounce, left silent: %s", index, error)
                pcm = b""
            except VitsInputError as error:  # the text itself is the problem: retrying cannot help
                return StepReport(self._fail("bad_message", str(error), type(error).__name__))
            except Exception as error:
                logger.warning("sentence %d of %d failed: %s", index, len(self.sentences), error, exc_info=True)
                return StepReport(self._synthesis_error(error))
            synthesis_s = self._clock() - began
            self.synthesis_s += synthesis_s
            if pcm:
                self._cache.put(key, CachedAudio(pcm=pcm, sample_rate=info.sample_rate))
            source = "synthesized"
        audio_s = len(pcm) / 2 / info.sample_rate
        self.audio_s += audio_s

        events: list[JobEvent] = []
        self._pending.append(pcm)
        self._pending_cached += int(source == "cache")
        self.next_index += 1
        last = self.next_index == len(self.sentences)
        if index in self._segment_ends:
            events.append(self._segment_event(self._segment_ends[index], index))
        if last:
            events.append(self._completed())
            self.outcome = JobOutcome("succeeded")
        return StepReport(events, source=source, synthesis_s=synthesis_s, audio_s=audio_s)

    def _segment_event(self, first: int, last: int) -> JobEvent:
        assert self.voice is not None
        pcm = b"".join(self._pending)
        if self.first_segment_s is None:
            self.first_segment_s = self._clock() - self.started_at
        self.segment_count += 1
        event = self._event(
            "segment",
            {
                "first_sentence": first,
                "sentence_count": last - first + 1,
                "sample_rate": self.voice.info.sample_rate,
                "audio_b64": encode_pcm16(pcm),
                "audio_seconds": round(len(pcm) / 2 / self.voice.info.sample_rate, 4),
                "cached_sentences": self._pending_cached,
            },
        )
        self._pending, self._pending_cached = [], 0
        return event

    def _completed(self) -> JobEvent:
        assert self.voice is not None
        return self._event(
            "completed",
            {
                "sentence_count": len(self.sentences),
                "segment_count": self.segment_count,
                "sample_rate": self.voice.info.sample_rate,
                "audio_seconds": round(self.audio_s, 4),
                "synthesis_seconds": round(self.synthesis_s, 4),
                "cached_sentences": self.cached_sentences,
                "first_segment_s": round(self.first_segment_s or 0.0, 4),
                "job_seconds": round(self._clock() - self.started_at, 4),
                "active_seconds": round(self.active_s, 4),
            },
        )


def run_job(
    payload: bytes,
    *,
    voices: VoiceSource,
    cache: SentenceCache,
    settings: PipelineSettings,
    queue: str = "short",
    redelivery_count: int = 0,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> tuple[list[JobEvent], JobOutcome]:
    """Message -> all of its events, without interruption (tests, tools)."""
    run = JobRun(
        payload,
        queue=queue,
        redelivery_count=redelivery_count,
        voices=voices,
        cache=cache,
        settings=settings,
        clock=clock,
        wall_clock=wall_clock,
    )
    events = run.begin()
    while run.outcome is None:
        events += run.step().events
    return events, run.outcome
