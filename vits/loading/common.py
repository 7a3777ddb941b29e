"""Shared loader logic: infer the architecture from tensor shapes and fit tensors to the model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from ..errors import VoiceLoadError
from ..model import (
    TRAINING_ONLY_PREFIXES,
    DurationConfig,
    EncoderConfig,
    FlowConfig,
    GeneratorConfig,
    ModelConfig,
    SynthesizerTrn,
)

# Piper's training defaults per residual block type, used when the file does not say.
_DEFAULT_DILATIONS = {"1": ((1, 3, 5), (1, 3, 5), (1, 3, 5)), "2": ((1, 2), (2, 6), (3, 12))}


def _shape(tensors: Mapping[str, torch.Tensor], name: str) -> tuple[int, ...]:
    if name not in tensors:
        raise VoiceLoadError(f"tensor {name!r} is missing: the file is not a VITS/Piper voice or is truncated")
    return tuple(tensors[name].shape)


def _count(tensors: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for name in tensors if (m := regex.fullmatch(name))}
    return sorted(found)


def infer_config(
    tensors: Mapping[str, torch.Tensor],
    *,
    n_speakers: int = 1,
    upsample_rates: tuple[int, ...] | None = None,
    resblock_dilations: tuple[tuple[int, ...], ...] | None = None,
    flow_dilation_rate: int = 1,
    tail_bound: float = 5.0,
) -> ModelConfig:
    """Build a `ModelConfig` from tensor shapes; what shapes cannot tell comes from the caller."""
    n_vocab, hidden = _shape(tensors, "enc_p.emb.weight")
    n_layers = len(_count(tensors, r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_q\.weight"))
    heads_rel, rel_len, k_channels = _shape(tensors, "enc_p.encoder.attn_layers.0.emb_rel_k")
    if heads_rel != 1:
        raise VoiceLoadError("tensor 'enc_p.encoder.attn_layers.0.emb_rel_k': per-head tables are not supported")
    filter_channels, _, kernel_size = _shape(tensors, "enc_p.encoder.ffn_layers.0.conv_1.weight")
    encoder = EncoderConfig(
        n_vocab=n_vocab,
        hidden_channels=hidden,
        filter_channels=filter_channels,
        n_heads=max(1, hidden // k_channels),
        n_layers=n_layers,
        kernel_size=kernel_size,
        window_size=(rel_len - 1) // 2,
    )
    inter_channels = _shape(tensors, "enc_p.proj.weight")[0] // 2

    if "dp.flows.0.m" in tensors:
        conv_flows = _count(tensors, r"dp\.flows\.(\d+)\.pre\.weight")
        proj_out = _shape(tensors, f"dp.flows.{conv_flows[-1]}.proj.weight")[0] if conv_flows else 29
        duration = DurationConfig(
            stochastic=True,
            filter_channels=hidden,
            kernel_size=_shape(tensors, "dp.convs.convs_sep.0.weight")[2],
            # flows.1 is dropped at inference, so there is one more flow than the file holds.
            n_flows=len([i for i in conv_flows if i >= 3]) + 1,
            num_bins=(proj_out + 1) // 3,
            tail_bound=tail_bound,
        )
    else:
        dp_filter, _, dp_kernel = _shape(tensors, "dp.conv_1.weight")
        duration = DurationConfig(stochastic=False, filter_channels=dp_filter, kernel_size=dp_kernel)

    flow_ids = _count(tensors, r"flow\.flows\.(\d+)\.pre\.weight")
    flow = FlowConfig(
        n_flows=len(flow_ids),
        kernel_size=_shape(tensors, "flow.flows.0.enc.in_layers.0.weight")[2],
        dilation_rate=flow_dilation_rate,
        n_layers=len(_count(tensors, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\.weight")),
    )

    n_ups = len(_count(tensors, r"dec\.ups\.(\d+)\.weight"))
    up_kernels = tuple(_shape(tensors, f"dec.ups.{i}.weight")[2] for i in range(n_ups))
    resblock = "1" if "dec.resblocks.0.convs1.0.weight" in tensors else "2"
    conv_name = "convs1" if resblock == "1" else "convs"
    n_blocks = len(_count(tensors, rf"dec\.resblocks\.(\d+)\.{conv_name}\.0\.weight"))
    if n_ups == 0 or n_blocks % n_ups:
        raise VoiceLoadError(f"decoder tensors 'dec.resblocks.*' ({n_blocks}) do not fit {n_ups} upsampling layers")
    num_kernels = n_blocks // n_ups
    res_kernels = tuple(_shape(tensors, f"dec.resblocks.{j}.{conv_name}.0.weight")[2] for j in range(num_kernels))
    if resblock_dilations is None:
        resblock_dilations = _DEFAULT_DILATIONS[resblock][:num_kernels]
    generator = GeneratorConfig(
        resblock=resblock,
        resblock_kernel_sizes=res_kernels,
        resblock_dilation_sizes=tuple(tuple(d) for d in resblock_dilations),
        # HiFi-GAN upsampling kernels are twice the stride in every released config.
        upsample_rates=tuple(upsample_rates) if upsample_rates else tuple(k // 2 for k in up_kernels),
        upsample_initial_channel=_shape(tensors, "dec.conv_pre.weight")[0],
        upsample_kernel_sizes=up_kernels,
    )
    gin = _shape(tensors, "emb_g.weight")[1] if "emb_g.weight" in tensors else 0
    return ModelConfig(
        inter_channels=inter_channels,
        encoder=encoder,
        duration=duration,
        flow=flow,
        generator=generator,
        n_speakers=n_speakers,
        gin_channels=gin,
    )


def with_speakers(config: ModelConfig, n_speakers: int) -> ModelConfig:
    return replace(config, n_speakers=n_speakers)


def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace (weight_g, weight_v) pairs - old and parametrization spellings - by the plain weight."""
    out: dict[str, torch.Tensor] = {}
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        if name.endswith(".weight_g") or name.endswith(".weight_v"):
            pending.setdefault(name[: -len(".weight_g")], {})[name[-1]] = tensor
        elif name.endswith(".parametrizations.weight.original0") or name.endswith(".parametrizations.weight.original1"):
            base = name[: -len(".parametrizations.weight.original0")]
            pending.setdefault(base, {})["g" if name.endswith("0") else "v"] = tensor
        else:
            out[name] = tensor
    for base, parts in pending.items():
        if set(parts) != {"g", "v"}:
            raise VoiceLoadError(f"tensor {base + '.weight_g'!r} or its weight_v partner is missing")
        g, v = parts["g"].float(), parts["v"].float()
        # weight_norm(dim=0): the norm runs over every axis but the first.
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        out[base + ".weight"] = v * (g / norm)
    return out


def build_model(
    config: ModelConfig, tensors: Mapping[str, torch.Tensor], *, sources: Mapping[str, str] | None = None
) -> SynthesizerTrn:
    """Create the model and copy `tensors` into it; any mismatch raises VoiceLoadError naming the tensor.

    `sources` maps a parameter name to the tensor's name in the file when they differ.
    """
    sources = sources or {}

    def label(name: str) -> str:
        src = sources.get(name, name)
        return f"{src!r}" if src == name else f"{src!r} (used as {name!r})"

    try:
        model = SynthesizerTrn(config)
    except (ValueError, RuntimeError) as error:
        raise VoiceLoadError(f"inferred architecture is invalid: {error}") from error
    expected = model.state_dict()
    unexpected = [name for name in tensors if name not in expected and not name.startswith(TRAINING_ONLY_PREFIXES)]
    if unexpected:
        raise VoiceLoadError(f"tensor {label(unexpected[0])} does not belong to the inferred model architecture")
    fitted: dict[str, Any] = {}
    for name, target in expected.items():
        if name not in tensors:
            raise VoiceLoadError(f"tensor {name!r} is missing from the voice file")
        value = tensors[name]
        if tuple(value.shape) != tuple(target.shape):
            raise VoiceLoadError(
                f"tensor {label(name)} has shape {list(value.shape)}, the model needs {list(target.shape)}"
            )
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise VoiceLoadError(f"tensor {label(name)} holds non-finite or non-float values")
        fitted[name] = value.to(target.dtype)
    model.load_state_dict(fitted, strict=True)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.dec.prepare()
    return model
