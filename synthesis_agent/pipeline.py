"""One delivery of one job as a sequence of events: the agent's pure domain logic.

`JobRun` turns a job message into `started`, `segment`..., `completed` (or `failed`) events
(and a `preview` of a long first sentence's first chunks),
one chunk of audio per `step()` (a cached sentence is one step), given a voice source, a
sentence cache and a clock. It knows nothing of Pulsar: the worker publishes the events it
returns, acks or retries according to `outcome`, and may pause a run between any two steps
(preemption, even mid-sentence) with no loss, because the run's progress lives in the run
itself, down to the suspended chunk iterator of a sentence in progress. `run_job` drives a run to its end in one call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from tts_contracts import (
    LENGTH_CLASSES,
    CompletedEvent,
    ContractError,
    FailedEvent,
    HeartbeatEvent,
    JobEvent,
    JobMessage,
    PreviewEvent,
    SegmentEvent,
    StartedEvent,
    defaults,
)
from vits.errors import UnspeakableTextError, VitsInputError, VoiceNotFoundError
from vits.params import SynthesisParams

from .ahead import SentenceBoard, spare_workers
from .cache import CachedAudio, SentenceCache, cache_key
from .outcomes import FAILURE_CODE, FailureReason, JobOutcome, PipelineSettings, StepReport, job_time_limit_s
from .segments import plan_segments
from .sentence import SentenceSynthesis
from .voice import VoiceLike

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class VoiceSource(Protocol):
    def get(self, voice_id: str | None) -> VoiceLike: ...


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
        self._unreadable: ContractError | None = None
        self.job_id: str | None = None
        self.attempt = 0
        self.length_class = queue if queue in LENGTH_CLASSES else "unknown"
        self.voice: VoiceLike | None = None
        self.params = SynthesisParams()
        self.sentences: list[str] = []
        self.next_index = 0
        self.outcome: JobOutcome | None = None
        self.time_limit_s = settings.time_limit_s

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
        self._current: SentenceSynthesis | None = None  # the sentence in progress, between chunks
        self._preview_due = False  # the first sentence is long enough to preview; not sent yet
        # With a voice that has spare worker threads: the next sentences computed side by side
        # (ahead.py), and those found cached on the way (index -> audio).
        self._board: SentenceBoard | None = None
        self._ahead_cached: dict[int, CachedAudio] = {}

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

    def _envelope(self) -> dict[str, Any]:
        """The fields every event of this delivery shares; each call takes the next `seq`."""
        assert self.job_id is not None
        envelope = {
            "job_id": self.job_id,
            "attempt": self.attempt,
            "seq": self._seq,
            "agent_id": self.settings.agent_id,
            "sent_at": self._wall(),
        }
        self._seq += 1
        return envelope

    def give_up(self, reason: FailureReason, user_reason: str, error_type: str, *, detail: str = "") -> list[JobEvent]:
        """End the run as failed; returns its `failed` event (none when the job id is unknown)."""
        self.outcome = JobOutcome("failed", reason, detail or user_reason)
        if self.job_id is None:  # nothing to address a failed event to: ack and log only
            return []
        return [
            FailedEvent(**self._envelope(), reason=user_reason[:2000], error_type=error_type, code=FAILURE_CODE[reason])
        ]

    def heartbeat(self, *, paused: bool) -> HeartbeatEvent:
        """The agent still holds this run (running, or `paused` behind higher-priority work)."""
        return HeartbeatEvent(
            **self._envelope(), sentences_done=self.next_index, sentence_count=self.sentence_count, paused=paused
        )

    def _synthesis_error(self, error: BaseException) -> list[JobEvent]:
        detail = f"{type(error).__name__}: {error}"[:300]
        if not self.last_attempt:
            self.outcome = JobOutcome("retry", "synthesis_error", detail)
            return []
        attempts = self.redelivery_count + 1
        return self.give_up(
            "synthesis_error",
            f"Speech synthesis failed after {attempts} attempt{'s' if attempts != 1 else ''}: {detail}",
            type(error).__name__,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def identify(self) -> tuple[str, int] | None:
        """Parse the message: its (job_id, attempt), or None when it does not follow the contract."""
        if self.message is None:
            try:
                self.message = JobMessage.from_bytes(self.payload)
            except ContractError as error:
                self._unreadable = error
                return None
            self.job_id, self.attempt = self.message.job_id, self.message.attempt
            if self.message.length_class in LENGTH_CLASSES:
                self.length_class = self.message.length_class
        return self.message.job_id, self.message.attempt

    def begin(self) -> list[JobEvent]:
        """Parse and validate the message, split the text; returns `[started]` or `[failed]`."""
        self.started_at = self._clock()
        try:
            return self._begin()
        finally:
            self.active_s += self._clock() - self.started_at

    def _begin(self) -> list[JobEvent]:
        if self.identify() is None:
            self._recover_identity()
            reason = f"The job message could not be read: {self._unreadable}"
            return self.give_up("bad_message", reason, "ContractError")
        message = self.message
        assert message is not None
        try:
            voice = self._voices.get(message.voice or None)
        except VoiceNotFoundError as error:
            return self.give_up("bad_message", f"Voice {message.voice!r} does not exist: {error}", type(error).__name__)
        except Exception as error:  # a voice that exists but fails to load is not the job's fault
            return self._synthesis_error(error)
        self.voice = voice
        try:
            self.params = SynthesisParams.from_dict(message.params).validate(num_speakers=voice.info.num_speakers)
            self.sentences = list(voice.prepare(message.text))
        except (VitsInputError, TypeError) as error:
            return self.give_up("bad_message", str(error), type(error).__name__)
        except Exception as error:
            return self._synthesis_error(error)
        if not self.sentences:
            return self.give_up("bad_message", "The text has nothing that can be spoken.", "EmptyTextError")
        plan = plan_segments(
            self.sentences,
            one_per_sentence=self.length_class in self.settings.sentence_segment_classes,
            length_scale=self.params.length_scale,
            target_seconds=self.settings.segment_target_seconds,
        )
        self._segment_ends = {first + count - 1: first for first, count in plan}
        first_audio_s = defaults.estimate_audio_seconds(
            chars=len(self.sentences[0]), length_scale=self.params.length_scale or 1.0
        )
        minimum = self.settings.preview_min_seconds
        self._preview_due = minimum > 0 and self.settings.chunk_seconds > 0 and first_audio_s >= minimum
        workers = spare_workers(voice) if self.settings.chunk_seconds > 0 else 0
        if workers and len(self.sentences) > 1:
            self._board = SentenceBoard(voice, self._start_ahead, sentence_count=len(self.sentences), workers=workers)
        self.time_limit_s = job_time_limit_s(
            chars=sum(len(sentence) for sentence in self.sentences),
            length_scale=self.params.length_scale,
            base_s=self.settings.time_limit_s,
            rtf=self.settings.time_limit_rtf,
        )
        if message.submitted_at > 0:
            self.queue_wait_s = max(0.0, self._wall() - message.submitted_at)
        return [
            StartedEvent(
                **self._envelope(),
                sentence_count=len(self.sentences),
                sample_rate=voice.info.sample_rate,
                voice=voice.info.id,
                model_checksum=voice.info.model_checksum,
                queue_wait_s=self.queue_wait_s or 0.0,
            )
        ]

    def _recover_identity(self) -> None:
        """For an unreadable message, the job id if the JSON has one, so the job can be failed."""
        with contextlib.suppress(ValueError, TypeError, UnicodeDecodeError, RecursionError):
            data = json.loads(self.payload.decode("utf-8"))
            job_id, attempt = data.get("job_id"), data.get("attempt")
            if isinstance(job_id, str) and 0 < len(job_id) <= 64 and isinstance(attempt, int) and attempt >= 1:
                self.job_id, self.attempt = job_id, attempt

    @property
    def mid_sentence(self) -> bool:
        """A sentence is partly synthesized: its finished chunks wait in the run."""
        if self._board is not None:
            return self._board.in_progress(self.next_index)
        return self._current is not None

    def step(self) -> StepReport:
        """Synthesize the next chunk, or deliver the next sentence (cached, or its last chunk done).

        A step is the unit of preemption: between two steps the run may wait for any time.
        """
        if self.outcome is not None or self.voice is None or not self._segment_ends:
            raise RuntimeError("step() on a run that has not begun or is already done")
        began = self._clock()
        try:
            return self._step()
        finally:
            if self.outcome is not None and self._board is not None:
                self._board.stop()  # an early end leaves sentences computed ahead unused
            self.active_s += self._clock() - began

    def _step(self) -> StepReport:
        assert self.voice is not None
        if self.active_s > self.time_limit_s:
            return StepReport(
                self.give_up(
                    "time_limit",
                    f"The job took longer than {self.time_limit_s:g} s and was stopped "
                    f"after {self.next_index} of {len(self.sentences)} sentences.",
                    "TimeLimitExceeded",
                )
            )
        index = self.next_index
        info = self.voice.info
        key = self._cache_key(index)
        source: Literal["cache", "synthesized"]
        synthesis_s = 0.0
        cached = None
        if self._current is None:
            cached = self._ahead_cached.pop(index, None)
            if cached is None and (self._board is None or self._board.get(index) is None):
                cached = self._cache.get(key)
        if cached is not None and cached.sample_rate == info.sample_rate:
            pcm = cached.pcm
            source = "cache"
            self.cached_sentences += 1
        else:
            try:
                current = self._advance(index)
            except UnspeakableTextError as error:
                # One sentence of only symbols in a speakable text: silence for it, not a failure.
                logger.warning("sentence %d has nothing to pronounce, left silent: %s", index, error)
                current = None
            except VitsInputError as error:  # the text itself is the problem: retrying cannot help
                return StepReport(self.give_up("bad_message", str(error), type(error).__name__))
            except Exception as error:
                logger.warning("sentence %d of %d failed: %s", index, len(self.sentences), error, exc_info=True)
                return StepReport(self._synthesis_error(error))
            if current is not None and not current.done:
                # Mid-sentence: nothing is delivered, counted or cached until its last chunk
                # (the first sentence's first chunks may go out as a preview).
                return StepReport(self._preview(index, current))
            self._current = None
            if self._board is not None:
                self._board.take(index)
            pcm = current.pcm if current is not None else b""
            if current is not None:
                synthesis_s = current.synthesis_s
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
        if index in self._segment_ends:
            events.append(self._segment_event(self._segment_ends[index], index))
        if self.next_index == len(self.sentences):
            events.append(self._completed())
            self.outcome = JobOutcome("succeeded")
        return StepReport(events, source=source, synthesis_s=synthesis_s, audio_s=audio_s)

    def _cache_key(self, index: int) -> str:
        assert self.voice is not None
        info = self.voice.info
        return cache_key(
            voice_id=info.id,
            model_checksum=info.model_checksum,
            params=self.params.to_dict(),
            sentence=self.sentences[index],
        )

    def _advance(self, index: int) -> SentenceSynthesis:
        """One chunk of work towards delivering sentence `index`; returns that sentence.

        Alone, the run computes the sentence's next chunk. With a board, the run's thread computes
        the first sentence from `index` on that no worker holds, while the workers go on with
        theirs; when they hold every unfinished one, it takes `index` over from its worker.
        """
        board = self._board
        if board is None:
            if self._current is None:
                self._current = self._synthesis(index, parallel=True)
            self._current.advance()
            return self._current
        current = board.get(index)
        if current is None:
            current = self._synthesis(index, parallel=False)
            board.adopt(index, current)
        self._current = current
        board.grant(index)
        if current.done:  # computed ahead, complete
            board.release(index)
            return current
        target = board.pick(index)
        if target is None:  # the workers hold every unfinished sentence: go on with this one here
            board.release(index)
            target = current
        if not target.done:
            # Alone (no worker computing beside it), a sentence gets all of the voice's threads.
            target.advance(spread=not board.computing)
        return current

    def _synthesis(self, index: int, *, parallel: bool) -> SentenceSynthesis:
        assert self.voice is not None
        return SentenceSynthesis(
            self.voice,
            self.sentences[index],
            self.params,
            chunk_seconds=self.settings.chunk_seconds,
            clock=self._clock,
            parallel=parallel,
        )

    def _start_ahead(self, index: int) -> SentenceSynthesis | None:
        """Sentence `index` to compute ahead; None when it is cached or its input fails (its turn
        handles that like any other sentence's)."""
        cached = self._cache.get(self._cache_key(index))
        if cached is not None:
            self._ahead_cached[index] = cached  # read once: counted once
            return None
        try:
            return self._synthesis(index, parallel=False)
        except Exception as error:
            logger.debug("sentence %d is not computed ahead: %s", index, error)
            return None

    def _preview(self, index: int, current: SentenceSynthesis) -> list[JobEvent]:
        """The first sentence's chunks so far, once per delivery, if that sentence is long enough.

        A prefix of the segment 0 this delivery sends: later chunks only append to it."""
        if not self._preview_due or index != 0 or current.chunks_done == 0:
            return []
        assert self.voice is not None
        self._preview_due = False
        return [PreviewEvent(**self._envelope(), sentence=0, sample_rate=self.voice.info.sample_rate, pcm=current.pcm)]

    def _segment_event(self, first: int, last: int) -> SegmentEvent:
        assert self.voice is not None
        if self.first_segment_s is None:
            self.first_segment_s = self._clock() - self.started_at
        self.segment_count += 1
        event = SegmentEvent(
            **self._envelope(),
            first_sentence=first,
            sentence_count=last - first + 1,
            sample_rate=self.voice.info.sample_rate,
            pcm=b"".join(self._pending),
            cached_sentences=self._pending_cached,
        )
        self._pending, self._pending_cached = [], 0
        return event

    def _completed(self) -> CompletedEvent:
        assert self.voice is not None
        return CompletedEvent(
            **self._envelope(),
            sentence_count=len(self.sentences),
            segment_count=self.segment_count,
            sample_rate=self.voice.info.sample_rate,
            audio_seconds=round(self.audio_s, 4),
            synthesis_seconds=round(self.synthesis_s, 4),
            cached_sentences=self.cached_sentences,
            first_segment_s=round(self.first_segment_s or 0.0, 4),
            job_seconds=round(self._clock() - self.started_at, 4),
            active_seconds=round(self.active_s, 4),
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
