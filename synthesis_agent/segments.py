"""Grouping consecutive sentences into `segment` events.

A segment is a run of whole sentences. The first one goes out alone, for fast first audio;
then sentences are grouped until about `max_seconds` of audio or `max_bytes` of PCM, so each
event stays well under a megabyte of base64 (512 KiB PCM -> ~700 KB base64) while a long
job does not become thousands of tiny messages. Short jobs use `max_seconds=0`: one segment
per sentence. The caller also flushes when a job is paused or ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_SECONDS = 10.0
DEFAULT_MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class Segment:
    first_sentence: int
    sentence_count: int
    pcm: bytes
    audio_seconds: float
    cached_sentences: int


@dataclass
class SegmentBuffer:
    sample_rate: int
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_bytes: int = DEFAULT_MAX_BYTES
    emitted: int = 0
    _first: int | None = None
    _parts: list[bytes] = field(default_factory=list)
    _cached: int = 0

    @property
    def pending_bytes(self) -> int:
        return sum(len(part) for part in self._parts)

    @property
    def pending_seconds(self) -> float:
        return self.pending_bytes / 2 / self.sample_rate

    def __len__(self) -> int:
        return len(self._parts)

    def fits(self, pcm_bytes: int) -> bool:
        """Whether one more sentence of `pcm_bytes` can join the pending ones."""
        return not self._parts or self.pending_bytes + pcm_bytes <= self.max_bytes

    def add(self, index: int, pcm: bytes, *, cached: bool) -> None:
        if self._first is None:
            self._first = index
        elif index != self._first + len(self._parts):
            raise ValueError(f"sentence {index} does not follow sentence {self._first + len(self._parts) - 1}")
        self._parts.append(pcm)
        self._cached += int(cached)

    def full(self) -> bool:
        """Time to flush: the first segment of a job, or enough audio gathered."""
        if not self._parts:
            return False
        if self.emitted == 0:
            return True
        return self.pending_seconds >= self.max_seconds or self.pending_bytes >= self.max_bytes

    def take(self) -> Segment | None:
        if not self._parts or self._first is None:
            return None
        segment = Segment(
            first_sentence=self._first,
            sentence_count=len(self._parts),
            pcm=b"".join(self._parts),
            audio_seconds=self.pending_seconds,
            cached_sentences=self._cached,
        )
        self._first, self._parts, self._cached = None, [], 0
        self.emitted += 1
        return segment
