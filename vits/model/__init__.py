"""PyTorch VITS, inference only."""

from .config import DurationConfig, EncoderConfig, FlowConfig, GeneratorConfig, ModelConfig
from .synthesizer import TRAINING_ONLY_PREFIXES, SynthesizerTrn

__all__ = [
    "TRAINING_ONLY_PREFIXES",
    "DurationConfig",
    "EncoderConfig",
    "FlowConfig",
    "GeneratorConfig",
    "ModelConfig",
    "SynthesizerTrn",
]
