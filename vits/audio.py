"""`Audio`: mono float samples plus their sample rate, with WAV / PCM16 conversions."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono audio. `samples` is a 1-D float32 array in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32).reshape(-1)
        object.__setattr__(self, "samples", samples)
        if int(self.sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def __len__(self) -> int:
        return len(self.samples)

    def to_pcm16_bytes(self) -> bytes:
        """Raw little-endian signed 16-bit samples (clipped to [-1, 1] first)."""
        clipped = np.clip(self.samples, -1.0, 1.0)
        return (np.round(clipped * 32767.0)).astype("<i2").tobytes()

    def to_wav_bytes(self) -> bytes:
        """A complete 16-bit PCM WAV file."""
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(self.samples, -1.0, 1.0), self.sample_rate, subtype="PCM_16", format="WAV")
        return buffer.getvalue()

    @classmethod
    def from_pcm16_bytes(cls, data: bytes, sample_rate: int) -> Audio:
        if len(data) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0
        return cls(samples, sample_rate)

    @classmethod
    def concatenate(cls, parts: list[Audio], *, silence_s: float = 0.0) -> Audio:
        """Join clips of the same sample rate, optionally with silence between them."""
        if not parts:
            raise ValueError("nothing to concatenate")
        rate = parts[0].sample_rate
        if any(p.sample_rate != rate for p in parts):
            raise ValueError("all parts must share one sample rate")
        gap = np.zeros(round(silence_s * rate), dtype=np.float32)
        chunks: list[np.ndarray] = []
        for i, part in enumerate(parts):
            if i and len(gap):
                chunks.append(gap)
            chunks.append(part.samples)
        return cls(np.concatenate(chunks), rate)
