"""A fake voice: deterministic synthetic audio, a configurable delay, injectable failures."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vits.errors import EmptyTextError, VoiceNotFoundError
from vits.params import SynthesisParams

FAKE_SAMPLE_RATE = 8000


@dataclass(frozen=True)
class FakeInfo:
    id: str = "fake-voice"
    sample_rate: int = FAKE_SAMPLE_RATE
    model_checksum: str = "fake-checksum-0001"
    num_speakers: int = 1


@dataclass(frozen=True)
class FakeAudio:
    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_pcm16_bytes(self) -> bytes:
        return (np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


@dataclass
class FakeVoice:
    """Splits on . ! ?; each sentence becomes a tone whose pitch and length depend on its text.

    `calls` records every synthesized sentence (thread-safe), so tests can prove that no
    sentence was synthesized twice.
    """

    info: FakeInfo = field(default_factory=FakeInfo)
    delay_s: float = 0.0
    seconds_per_char: float = 0.01
    fail_on: Iterable[str] = ()
    calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, text: str) -> list[str]:
        sentences = [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if part.strip()]
        if not sentences:
            raise EmptyTextError("The text is empty.")
        return sentences

    def synthesize_sentence(self, sentence: str, params: SynthesisParams | None = None) -> FakeAudio:
        if self.delay_s:
            time.sleep(self.delay_s)
        if any(marker in sentence for marker in self.fail_on):
            raise RuntimeError(f"fake synthesis failure on {sentence!r}")
        with self._lock:
            self.calls.append(sentence)
        return self.tone(sentence, params)

    def tone(self, sentence: str, params: SynthesisParams | None = None) -> FakeAudio:
        """The audio of a sentence, without delay or record."""
        params = params or SynthesisParams()
        digest = zlib.crc32(f"{sentence}|{params.length_scale}|{params.noise_scale}|{params.seed}".encode())
        seconds = max(0.1, len(sentence) * self.seconds_per_char) * (params.length_scale or 1.0)
        t = np.arange(int(seconds * self.info.sample_rate)) / self.info.sample_rate
        frequency = 200 + digest % 600
        return FakeAudio((0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), self.info.sample_rate)


class FakeChunks:
    """The fake voice's `SentenceChunks`: the sentence's tone in chunks of `chunk_seconds`."""

    def __init__(self, voice: ChunkedFakeVoice, sentence: str, audio: FakeAudio, chunk_seconds: float) -> None:
        self._voice = voice
        self._sentence = sentence
        self._audio = audio
        self._size = max(1, int(chunk_seconds * audio.sample_rate))
        self.next_chunk = 0

    @property
    def done(self) -> bool:
        return self.next_chunk * self._size >= len(self._audio.samples)

    def __iter__(self) -> FakeChunks:
        return self

    def __next__(self) -> FakeAudio:
        if self.done:
            raise StopIteration
        index, self.next_chunk = self.next_chunk, self.next_chunk + 1
        self._voice.record_chunk(self._sentence, index)
        if self._voice.chunk_delay_s:
            time.sleep(self._voice.chunk_delay_s)
        samples = self._audio.samples[index * self._size : (index + 1) * self._size]
        return FakeAudio(samples, self._audio.sample_rate)


@dataclass
class ChunkedFakeVoice(FakeVoice):
    """A fake voice that also offers `sentence_chunks`, each chunk taking `chunk_delay_s`.

    `chunk_calls` records every chunk computed as (sentence, index), in order and
    thread-safe, so tests can see when a job ran and prove that no chunk was computed twice.
    Joined, a sentence's chunks equal `synthesize_sentence` (which records in `calls`).
    """

    chunk_delay_s: float = 0.0
    chunk_calls: list[tuple[str, int]] = field(default_factory=list)
    # Like vits' decode workers: sentences computed at once (`submit` runs work beside the caller).
    parallel_sentences: int = 1
    serial_sentences: list[str] = field(default_factory=list)  # made with parallel=False
    spread_sentences: list[str] = field(default_factory=list)  # chunks asked of `next_chunks`
    chunk_threads: list[str] = field(default_factory=list)  # the thread of each `chunk_calls` entry
    _pool: ThreadPoolExecutor | None = None

    def record_chunk(self, sentence: str, index: int) -> None:
        with self._lock:
            self.chunk_calls.append((sentence, index))
            self.chunk_threads.append(threading.current_thread().name)

    def sentence_chunks(
        self, sentence: str, params: SynthesisParams | None = None, *, chunk_seconds: float = 1.0, parallel: bool = True
    ) -> FakeChunks:
        if any(marker in sentence for marker in self.fail_on):
            raise RuntimeError(f"fake synthesis failure on {sentence!r}")
        if not parallel:
            self.serial_sentences.append(sentence)
        return FakeChunks(self, sentence, self.tone(sentence, params), chunk_seconds)

    def next_chunks(self, iterators: list[FakeChunks]) -> list[FakeAudio | None]:
        self.spread_sentences += [chunks._sentence for chunks in iterators]
        return [next(chunks, None) for chunks in iterators]

    def submit(self, work: Callable[[], object]) -> Future[object]:
        assert self.parallel_sentences > 1, "no worker thread besides the caller's"
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.parallel_sentences - 1, thread_name_prefix="fake-worker")
        return self._pool.submit(work)


class FakeVoices:
    """A VoiceSource with one fake voice; other ids are unknown."""

    def __init__(self, voice: FakeVoice | None = None) -> None:  # any FakeVoice, chunked or not
        self.voice = voice or FakeVoice()

    def get(self, voice_id: str | None) -> FakeVoice:
        if voice_id not in (None, "", self.voice.info.id):
            raise VoiceNotFoundError(f"no voice named {voice_id!r}")
        return self.voice

    def loader(self, voice_id: str | None) -> FakeVoice:
        return self.get(voice_id)


def sentences_text(count: int, *, tag: str = "s") -> str:
    """`count` distinct sentences: "Sentence s 0 is here. Sentence s 1 is here. ..."."""
    return " ".join(f"Sentence {tag} {index} is here." for index in range(count))


def gateway_tiling(events: list[Any]) -> list[tuple[int, int]]:
    """The segments as the gateway keeps them across deliveries: the first segment seen for each
    first_sentence wins, later ones are duplicates. Returns (first, count) in sentence order."""
    kept: dict[int, int] = {}
    for event in events:
        if event.type == "segment":
            kept.setdefault(event.first_sentence, event.sentence_count)
    return sorted(kept.items())


def tiles(tiling: list[tuple[int, int]], count: int) -> bool:
    """Whether segments cover sentences 0..count-1 exactly once (what the gateway's completion checks)."""
    covered = 0
    for first, size in tiling:
        if first != covered:
            return False
        covered += size
    return covered == count
