"""The PyTorch model against onnxruntime running the same Piper .onnx, at zero noise.

Compiled mode (torch.compile, tens of seconds to compile, so not in the default run):
    TTS_VITS_COMPILE=1 .venv/bin/pytest -q tests/vits/test_parity.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from vits import Voice
from vits.model import engine
from vits.model.engine import ONEDNN_AVAILABLE, ROW_ENGINES
from vits.params import SynthesisParams

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "Is this the real life, or is it just fantasy?",
    "Wow!",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "On the twelfth of May, two thousand twenty four, the meeting started at nine thirty.",
    "Doctor Smith paid three dollars and fifty cents for a coffee.",
    "Yes.",
    "Photosynthesis converts light energy into chemical energy; plants, algae and bacteria use it.",
    "I can't believe it's already Friday, said Anna, smiling.",
    "A, B, C.",
    "Supercalifragilisticexpialidocious is a very long word indeed.",
]


@pytest.fixture(params=[name for name in ROW_ENGINES if name == "mkl" or ONEDNN_AVAILABLE])
def row_engine(request: pytest.FixtureRequest, restore_engine: None) -> str:
    """Both row engines (model/engine.py), whichever the machine measured faster at load."""
    engine.set_row_engine(request.param)
    return request.param


@pytest.mark.parametrize("length_scale", [1.0, 1.3])
def test_matches_onnxruntime_at_zero_noise(voice: Voice, onnx_session, length_scale: float, row_engine: str) -> None:
    sentences = SENTENCES if length_scale == 1.0 else SENTENCES[:3]
    params = SynthesisParams(noise_scale=0.0, length_scale=length_scale, noise_w=0.0)
    for sentence in sentences:
        ids = voice.phoneme_ids(sentence)
        expected = onnx_session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([0.0, length_scale, 0.0], dtype=np.float32),
            },
        )[0].reshape(-1)
        got = voice.synthesize_ids([ids], params)[0].samples
        assert got.shape == expected.shape, sentence
        assert float(np.abs(got - expected).max()) <= 1e-3, sentence


def test_compiled_mode_follows_environment(voice: Voice) -> None:
    """The compiled parity run above really runs compiled (and the default run eager)."""
    assert voice.model.compiled == (os.environ.get("TTS_VITS_COMPILE", "0") == "1")
