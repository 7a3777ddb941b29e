"""Original VITS checkpoints: a small random model saved in the original format loads back exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vits import SynthesisParams, Voice
from vits.errors import VoiceLoadError
from vits.loading.settings import DEFAULT_VITS_SYMBOLS
from vits.model import DurationConfig, EncoderConfig, FlowConfig, GeneratorConfig, ModelConfig, SynthesizerTrn

# Layers the original code wraps in weight_norm; their weights are stored as (weight_g, weight_v).
WEIGHT_NORMED = re.compile(
    r"^(dec\.ups\.\d+|dec\.resblocks\.\d+\.convs[12]?\.\d+|flow\.flows\.\d+\.enc\.(in_layers|res_skip_layers)\.\d+"
    r"|flow\.flows\.\d+\.enc\.cond_layer)\.weight$"
)

HIGH_LIKE = ModelConfig(
    inter_channels=16,
    encoder=EncoderConfig(n_vocab=len(DEFAULT_VITS_SYMBOLS), hidden_channels=32, filter_channels=64, n_layers=2),
    duration=DurationConfig(stochastic=True, filter_channels=32),  # SDP: always the hidden size
    flow=FlowConfig(n_flows=2, n_layers=2),
    generator=GeneratorConfig(
        resblock="1",
        resblock_kernel_sizes=(3, 5),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
        upsample_rates=(4, 2, 2),
        upsample_initial_channel=32,
        upsample_kernel_sizes=(8, 4, 4),
    ),
)
MULTI_SPEAKER = ModelConfig(
    inter_channels=16,
    encoder=EncoderConfig(n_vocab=len(DEFAULT_VITS_SYMBOLS), hidden_channels=32, filter_channels=48, n_layers=1),
    duration=DurationConfig(stochastic=False, filter_channels=24),
    flow=FlowConfig(n_flows=2, n_layers=2),
    generator=GeneratorConfig(
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 2),),
        upsample_rates=(4, 4),
        upsample_initial_channel=16,
        upsample_kernel_sizes=(8, 8),
    ),
    n_speakers=3,
    gin_channels=8,
)


def _random_model(config: ModelConfig) -> SynthesizerTrn:
    torch.manual_seed(0)
    model = SynthesizerTrn(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.1)
    model.dec.prepare()
    return model


def _original_state_dict(model: SynthesizerTrn) -> dict[str, torch.Tensor]:
    """The model's weights as the original training code stores them."""
    state: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if WEIGHT_NORMED.match(name):
            base = name[: -len(".weight")]
            norm = tensor.flatten(1).norm(dim=1).view(-1, *([1] * (tensor.dim() - 1)))
            state[base + ".weight_v"] = tensor * 3.0  # any scale: only the direction is kept
            state[base + ".weight_g"] = norm
        else:
            state[name] = tensor.clone()
    # Training-only parts the loader must skip.
    state["enc_q.pre.weight"] = torch.randn(4, 4, 1)
    state["dp.post_pre.weight"] = torch.randn(4, 1, 1)
    if model.config.duration.stochastic:
        state["dp.flows.1.pre.weight"] = torch.randn(4, 1, 1)
    return state


def _original_config(config: ModelConfig) -> dict:
    gen = config.generator
    return {
        "train": {"segment_size": 8192, "learning_rate": 2e-4},
        "data": {
            "text_cleaners": ["english_cleaners2"],
            "sampling_rate": 16000,
            "filter_length": 1024,
            "hop_length": gen.hop_length,
            "add_blank": True,
            "n_speakers": config.n_speakers if config.n_speakers > 1 else 0,
            "cleaned_text": True,
        },
        "model": {
            "inter_channels": config.inter_channels,
            "hidden_channels": config.encoder.hidden_channels,
            "filter_channels": config.encoder.filter_channels,
            "n_heads": config.encoder.n_heads,
            "n_layers": config.encoder.n_layers,
            "kernel_size": config.encoder.kernel_size,
            "p_dropout": 0.1,
            "resblock": gen.resblock,
            "resblock_kernel_sizes": list(gen.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in gen.resblock_dilation_sizes],
            "upsample_rates": list(gen.upsample_rates),
            "upsample_initial_channel": gen.upsample_initial_channel,
            "upsample_kernel_sizes": list(gen.upsample_kernel_sizes),
            "n_layers_q": 3,
            "use_spectral_norm": False,
            **({"gin_channels": config.gin_channels} if config.n_speakers > 1 else {}),
        },
    }


def _save(model: SynthesizerTrn, directory: Path, name: str, config: dict | None = None) -> Path:
    path = directory / f"{name}.pth"
    torch.save(
        {"model": _original_state_dict(model), "iteration": 1000, "optimizer": None, "learning_rate": 2e-4}, path
    )
    (directory / f"{name}.json").write_text(json.dumps(config or _original_config(model.config)))
    return path


def _infer(model: SynthesizerTrn, ids: list[int], **kwargs) -> torch.Tensor:
    with torch.inference_mode():
        audio, _ = model.infer(torch.tensor([ids]), torch.tensor([len(ids)]), **kwargs)
    return audio[0]


@pytest.mark.parametrize("config", [HIGH_LIKE, MULTI_SPEAKER], ids=["sdp-resblock1", "dp-resblock2-speakers"])
def test_round_trip(tmp_path: Path, config: ModelConfig) -> None:
    original = _random_model(config)
    voice = Voice.load(_save(original, tmp_path, "tiny"))
    assert voice.info.format == "vits" and voice.info.id == "tiny"
    assert voice.model.config == config
    ids = [0, 20, 0, 45, 0, 60, 0, 3, 0, 99, 0, 12, 0]
    speakers = torch.tensor([2]) if config.n_speakers > 1 else None
    zero = {"noise_scale": 0.0, "length_scale": 1.0, "noise_w": 0.0, "speakers": speakers}
    torch.testing.assert_close(_infer(voice.model, ids, **zero), _infer(original, ids, **zero), atol=1e-5, rtol=0)
    noisy = {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8, "speakers": speakers}
    a = _infer(voice.model, ids, generators=[torch.Generator().manual_seed(7)], **noisy)
    b = _infer(original, ids, generators=[torch.Generator().manual_seed(7)], **noisy)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_checkpoint_voice_synthesizes_text(tmp_path: Path) -> None:
    voice = Voice.load(_save(_random_model(MULTI_SPEAKER), tmp_path, "tiny"))
    assert voice.info.num_speakers == 3 and voice.sample_rate == 16000
    ids = voice.phoneme_ids("Hello world.")
    assert ids[0] == 0 and ids[-1] == 0 and all(i == 0 for i in ids[::2])  # add_blank interspersing
    audio = voice.synthesize("Hello world.", SynthesisParams(speaker=2, seed=1))
    assert audio.sample_rate == 16000 and len(audio) > 0 and np.isfinite(audio.samples).all()


def test_config_that_contradicts_tensors(tmp_path: Path) -> None:
    model = _random_model(HIGH_LIKE)
    config = _original_config(HIGH_LIKE)
    config["model"]["hidden_channels"] = 64
    with pytest.raises(VoiceLoadError, match="hidden_channels"):
        Voice.load(_save(model, tmp_path, "tiny", config))


def test_missing_weight_norm_half(tmp_path: Path) -> None:
    model = _random_model(HIGH_LIKE)
    path = _save(model, tmp_path, "tiny")
    payload = torch.load(path, weights_only=True)
    del payload["model"]["dec.ups.0.weight_g"]
    torch.save(payload, path)
    with pytest.raises(VoiceLoadError, match=r"dec\.ups\.0"):
        Voice.load(path)


def test_unreadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"definitely not a zip")
    (tmp_path / "junk.json").write_text(json.dumps(_original_config(HIGH_LIKE)))
    with pytest.raises(VoiceLoadError, match="checkpoint"):
        Voice.load(path)
    (tmp_path / "junk.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(VoiceLoadError, match="'data' and 'model'"):
        Voice.load(path)
