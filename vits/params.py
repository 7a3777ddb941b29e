"""Synthesis parameters and their allowed ranges, shared by the gateway and the agent."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import ParameterError, UnknownSpeakerError

# Inclusive ranges. Outside them VITS output degrades into noise or silence.
LENGTH_SCALE_RANGE = (0.25, 4.0)
NOISE_SCALE_RANGE = (0.0, 2.0)
NOISE_W_RANGE = (0.0, 2.0)
SEED_RANGE = (0, 2**31 - 1)


@dataclass(frozen=True)
class SynthesisParams:
    """Per-request synthesis settings; `None` means "the voice's default"."""

    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    speaker: int | None = None
    seed: int | None = None

    def validate(self, *, num_speakers: int = 1) -> SynthesisParams:
        """Raise `ParameterError` naming the field if a value is out of range; return self."""
        for name, (low, high) in (
            ("length_scale", LENGTH_SCALE_RANGE),
            ("noise_scale", NOISE_SCALE_RANGE),
            ("noise_w", NOISE_W_RANGE),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{name} must be a number, got {value!r}", field=name)
            if not (low <= float(value) <= high) or value != value:  # NaN fails both checks
                raise ParameterError(f"{name} must be between {low} and {high}, got {value}", field=name)
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, int):
                raise ParameterError(f"seed must be an integer, got {self.seed!r}", field="seed")
            if not (SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]):
                raise ParameterError(
                    f"seed must be between {SEED_RANGE[0]} and {SEED_RANGE[1]}, got {self.seed}", field="seed"
                )
        if self.speaker is not None:
            if isinstance(self.speaker, bool) or not isinstance(self.speaker, int):
                raise UnknownSpeakerError(f"speaker must be an integer id, got {self.speaker!r}", field="speaker")
            if not (0 <= self.speaker < num_speakers):
                raise UnknownSpeakerError(
                    f"speaker {self.speaker} does not exist: this voice has speakers 0..{num_speakers - 1}",
                    field="speaker",
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SynthesisParams:
        data = data or {}
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})
