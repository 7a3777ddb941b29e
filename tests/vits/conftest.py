"""Fixtures for the `vits` tests: the real default voice, loaded once per session.

Nothing here needs Django, the broker or Redis.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vits import Voice


@pytest.fixture
def restore_engine() -> Iterator[None]:
    """Put back the process-wide row engine (vits/model/engine.py) a test switched."""
    from vits.model import engine

    before = engine.row_engine()
    yield
    engine.set_row_engine(before)


@pytest.fixture(scope="session")
def voice() -> Voice:
    # The test run is an entry point: TTS_VITS_COMPILE=1 selects compiled mode (test_parity.py).
    # TTS_TEST_DEVICE=cuda puts it on a GPU (scripts/gpu_check.sh); the default is the CPU.
    return Voice.load(
        threads=2,
        compile=os.environ.get("TTS_VITS_COMPILE", "0") == "1",
        device=os.environ.get("TTS_TEST_DEVICE", "cpu"),
    )


@pytest.fixture(scope="session")
def serial_voice(voice: Voice) -> Voice:
    """The same model decoding one window at a time (`voice` decodes two at once: 2 threads)."""
    from vits.parallel import WindowWorkers

    return Voice(voice.info, voice.settings, voice.model, voice.device, WindowWorkers(1))


@pytest.fixture(scope="session")
def default_paths(voice: Voice) -> tuple[Path, Path]:
    return voice.info.model_path, voice.info.config_path


@pytest.fixture(scope="session")
def piper_config(default_paths: tuple[Path, Path]) -> dict:
    return json.loads(default_paths[1].read_text())


@pytest.fixture(scope="session")
def onnx_session(default_paths: tuple[Path, Path]):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(default_paths[0]), options, providers=["CPUExecutionProvider"])


@pytest.fixture
def voice_copy(tmp_path: Path, default_paths: tuple[Path, Path]):
    """Factory: place the default voice's model (symlinked) and a config (copied or given) in tmp."""

    def make(name: str = "test-voice", config: dict | str | None = None) -> Path:
        model, cfg = default_paths
        target = tmp_path / f"{name}.onnx"
        target.symlink_to(model)
        config_path = tmp_path / f"{name}.onnx.json"
        if config is None:
            shutil.copy(cfg, config_path)
        elif isinstance(config, str):
            config_path.write_text(config)
        else:
            config_path.write_text(json.dumps(config))
        return target

    return make
