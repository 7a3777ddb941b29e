"""Load an original VITS generator checkpoint (.pth) with its JSON hyper-parameters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import VoiceLoadError
from ..model import SynthesizerTrn
from .common import build_model, fold_weight_norm, infer_config
from .settings import VoiceSettings


def _tuple(value: Any, what: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise VoiceLoadError(f"model.{what} must be a list, got {value!r}")
    return tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        # weights_only: a checkpoint must not be able to run code on load.
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise VoiceLoadError(f"checkpoint {path} does not exist") from error
    except Exception as error:
        raise VoiceLoadError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
    state = payload.get("model", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VoiceLoadError(f"{path} holds no generator state dict (expected {{'model': state_dict, ...}})")
    # Checkpoints saved from DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_vits_model(path: Path, settings: VoiceSettings) -> SynthesizerTrn:
    tensors = fold_weight_norm(read_state_dict(path))
    section = settings.model_section
    config = infer_config(
        tensors,
        n_speakers=settings.num_speakers,
        upsample_rates=_tuple(section.get("upsample_rates"), "upsample_rates"),
        resblock_dilations=_tuple(section.get("resblock_dilation_sizes"), "resblock_dilation_sizes"),
    )
    # Cross-check the JSON against what the tensors say, so a mismatched pair fails clearly.
    checks = {
        "hidden_channels": config.encoder.hidden_channels,
        "inter_channels": config.inter_channels,
        "filter_channels": config.encoder.filter_channels,
        "n_heads": config.encoder.n_heads,
        "n_layers": config.encoder.n_layers,
        "upsample_initial_channel": config.generator.upsample_initial_channel,
        "resblock": config.generator.resblock,
    }
    for key, inferred in checks.items():
        if key in section and str(section[key]) != str(inferred):
            raise VoiceLoadError(
                f"config says model.{key} = {section[key]!r} but the checkpoint's tensors give {inferred!r}"
            )
    if "upsample_kernel_sizes" in section and tuple(section["upsample_kernel_sizes"]) != (
        config.generator.upsample_kernel_sizes
    ):
        raise VoiceLoadError("config model.upsample_kernel_sizes does not match tensors 'dec.ups.*.weight'")
    return build_model(config, tensors)
