"""Catalogue: list_voices / find_voice read configs only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import vits
from vits.errors import VoiceNotFoundError

JOE_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"


def test_default_voice_listed() -> None:
    voices = vits.list_voices()
    joe = next(v for v in voices if v.id == "en_US-joe-medium")
    assert joe.language == "en_US"
    assert joe.sample_rate == 22050
    assert joe.num_speakers == 1
    assert joe.quality == "medium"
    assert joe.format == "piper"
    assert joe.model_checksum == JOE_SHA256
    assert joe.to_dict(with_checksum=True)["model_checksum"] == JOE_SHA256


def test_list_voices_is_fast() -> None:
    vits.list_voices()
    started = time.perf_counter()
    for _ in range(10):
        vits.list_voices()
    assert (time.perf_counter() - started) / 10 < 0.05


def test_find_voice() -> None:
    assert vits.find_voice("en_US-joe-medium").sample_rate == 22050
    with pytest.raises(VoiceNotFoundError, match=r"available voices: .*en_US-joe-medium"):
        vits.find_voice("nope")


def test_voices_dir(voice_copy, tmp_path: Path, piper_config: dict) -> None:
    voice_copy("en_GB-extra-low", {**piper_config, "audio": {"sample_rate": 16000, "quality": "low"}})
    voice_copy("broken", "{")  # listed voices skip a broken config instead of failing
    ids = [v.id for v in vits.list_voices(tmp_path)]
    assert ids == ["en_GB-extra-low", "en_US-joe-medium"]
    extra = vits.find_voice("en_GB-extra-low", voices_dir=tmp_path)
    assert extra.sample_rate == 16000 and extra.quality == "low"
    assert extra.model_checksum == JOE_SHA256


def test_pth_voice_in_dir(tmp_path: Path) -> None:
    (tmp_path / "ljs.pth").write_bytes(b"x")
    (tmp_path / "ljs.json").write_text(json.dumps({"data": {"sampling_rate": 22050}, "model": {}}))
    info = vits.find_voice("ljs", tmp_path)
    assert info.format == "vits" and info.sample_rate == 22050


def test_importing_vits_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, vits; vits.list_voices(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_library_reads_no_environment(
    voice_copy, tmp_path: Path, piper_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only entry points read the environment: the variables they use change nothing here."""
    voice_copy("en_GB-extra-low", piper_config)
    monkeypatch.setenv("TTS_VOICES_DIR", str(tmp_path))
    monkeypatch.setenv("TTS_DEFAULT_VOICE", "en_GB-extra-low")
    assert [v.id for v in vits.list_voices()] == ["en_US-joe-medium"]
    with pytest.raises(VoiceNotFoundError, match="en_GB-extra-low"):
        vits.find_voice("en_GB-extra-low")
    assert vits.find_voice("en_GB-extra-low", tmp_path).id == "en_GB-extra-low"


def test_no_environment_lookup_in_the_package() -> None:
    """A grep, so that a new `os.environ.get("TTS_...")` in vits fails here, not in review."""
    root = Path(vits.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "os.environ.get(" in path.read_text() or "os.getenv(" in path.read_text()
    ]
    assert offenders == []
