"""Voice files that do not fit: each failure names what is wrong."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from vits import Voice
from vits.errors import VoiceLoadError, VoiceNotFoundError


@pytest.fixture(scope="module")
def onnx_proto(default_paths: tuple[Path, Path]) -> onnx.ModelProto:
    return onnx.load(str(default_paths[0]))


def _write_tampered(proto: onnx.ModelProto, config: Path, tmp_path: Path, name: str, make: callable) -> Path:
    """Save a copy of the voice whose initializer `name` is replaced by make(original_array)."""
    tampered = onnx.ModelProto()
    tampered.CopyFrom(proto)
    for index, init in enumerate(tampered.graph.initializer):
        if init.name == name:
            new = numpy_helper.from_array(make(numpy_helper.to_array(init)), name)
            tampered.graph.initializer[index].CopyFrom(new)
            break
    else:
        raise AssertionError(f"no initializer {name}")
    path = tmp_path / "tampered.onnx"
    onnx.save(tampered, str(path))
    shutil.copy(config, tmp_path / "tampered.onnx.json")
    return path


@pytest.mark.parametrize(
    "name",
    [
        "dec.resblocks.4.convs.1.weight",  # plain module path
        "onnx::Conv_8171",  # flow WaveNet weight found through its consuming node
        "enc_p.encoder.attn_layers.2.conv_v.bias",
    ],
)
def test_wrong_shape_names_the_tensor(onnx_proto, default_paths, tmp_path: Path, name: str) -> None:
    path = _write_tampered(onnx_proto, default_paths[1], tmp_path, name, lambda a: a[..., :-1].copy())
    with pytest.raises(VoiceLoadError, match=re.escape(name)):
        Voice.load(path)


def test_non_finite_tensor_names_the_tensor(onnx_proto, default_paths, tmp_path: Path) -> None:
    def poison(array: np.ndarray) -> np.ndarray:
        out = array.copy()
        out.flat[0] = np.nan
        return out

    path = _write_tampered(onnx_proto, default_paths[1], tmp_path, "flow.flows.2.post.bias", poison)
    with pytest.raises(VoiceLoadError, match=r"flow\.flows\.2\.post\.bias"):
        Voice.load(path)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(VoiceNotFoundError):
        Voice.load(tmp_path / "nothing.onnx")
    with pytest.raises(VoiceNotFoundError, match="en_US-joe-medium"):
        Voice.load("xx_XX-nobody-medium")
    model = tmp_path / "lonely.onnx"
    model.write_bytes(b"not really")
    with pytest.raises(VoiceLoadError, match="config"):
        Voice.load(model)


def test_not_an_onnx_file(tmp_path: Path, default_paths) -> None:
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"\x00\x01garbage" * 100)
    shutil.copy(default_paths[1], tmp_path / "garbage.onnx.json")
    with pytest.raises(VoiceLoadError, match="ONNX"):
        Voice.load(model)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c: "{not json", "not valid JSON"),
        (lambda c: {k: v for k, v in c.items() if k != "phoneme_id_map"}, "phoneme_id_map"),
        (lambda c: {**c, "audio": {"quality": "medium"}}, "sample_rate"),
        (lambda c: {**c, "audio": {"sample_rate": -5}}, "sample_rate"),
        (lambda c: {**c, "num_speakers": 0}, "num_speakers"),
        (lambda c: {**c, "phoneme_type": "text"}, "phoneme_type"),
        (lambda c: {**c, "inference": {"noise_scale": "loud"}}, "noise_scale"),
    ],
)
def test_bad_config(voice_copy, piper_config: dict, mutate, match: str) -> None:
    path = voice_copy("bad", mutate(piper_config))
    with pytest.raises(VoiceLoadError, match=match):
        Voice.load(path)


def test_speaker_count_must_fit_tensors(voice_copy, piper_config: dict) -> None:
    path = voice_copy("multi", {**piper_config, "num_speakers": 4})
    with pytest.raises(VoiceLoadError, match="emb_g"):
        Voice.load(path)


def test_load_by_path_and_config(voice: Voice, voice_copy) -> None:
    path = voice_copy("copy")
    loaded = Voice.load(str(path))
    assert loaded.info.id == "copy"
    assert loaded.model.config == voice.model.config
    assert json.loads(loaded.info.config_path.read_text())["audio"]["sample_rate"] == 22050
