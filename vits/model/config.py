"""Typed hyper-parameters of the VITS synthesizer (inference part only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EncoderConfig:
    """Text encoder: embedding + transformer with windowed relative attention."""

    n_vocab: int = 256
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    window_size: int = 4


@dataclass(frozen=True)
class DurationConfig:
    """Duration predictor; `stochastic` picks the flow-based (SDP) or the plain convolutional one."""

    stochastic: bool = True
    filter_channels: int = 192  # SDP uses 192, the deterministic predictor 256 in the original code
    kernel_size: int = 3
    n_flows: int = 4
    num_bins: int = 10
    tail_bound: float = 5.0


@dataclass(frozen=True)
class FlowConfig:
    """Residual coupling flow between the prior and the decoder's latent."""

    n_flows: int = 4
    kernel_size: int = 5
    dilation_rate: int = 1
    n_layers: int = 4


@dataclass(frozen=True)
class GeneratorConfig:
    """HiFi-GAN generator."""

    resblock: str = "2"
    resblock_kernel_sizes: tuple[int, ...] = (3, 5, 7)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 2), (2, 6), (3, 12))
    upsample_rates: tuple[int, ...] = (8, 8, 4)
    upsample_initial_channel: int = 256
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8)

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build `SynthesizerTrn` for inference."""

    inter_channels: int = 192
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    duration: DurationConfig = field(default_factory=DurationConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    n_speakers: int = 1
    gin_channels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        gen = dict(data.get("generator", {}))
        for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            if key in gen:
                gen[key] = tuple(gen[key])
        if "resblock_dilation_sizes" in gen:
            gen["resblock_dilation_sizes"] = tuple(tuple(d) for d in gen["resblock_dilation_sizes"])
        return cls(
            inter_channels=data.get("inter_channels", 192),
            encoder=EncoderConfig(**data.get("encoder", {})),
            duration=DurationConfig(**data.get("duration", {})),
            flow=FlowConfig(**data.get("flow", {})),
            generator=GeneratorConfig(**gen),
            n_speakers=data.get("n_speakers", 1),
            gin_channels=data.get("gin_channels", 0),
        )
