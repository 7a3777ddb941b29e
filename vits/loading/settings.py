"""Read a voice's JSON config (Piper `.onnx.json` or original VITS `.json`) without touching weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import VoiceLoadError

IdStyle = Literal["piper", "interspersed", "plain"]

# Symbol table of the original VITS release (text/symbols.py): pad, punctuation, letters, IPA.
_VITS_PAD = "_"
_VITS_PUNCTUATION = ';:,.!?¡¿—…"«»“” '
_VITS_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VITS_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"
)
DEFAULT_VITS_SYMBOLS = [_VITS_PAD, *_VITS_PUNCTUATION, *_VITS_LETTERS, *_VITS_IPA]


@dataclass(frozen=True)
class VoiceSettings:
    """Everything in the config that inference needs besides the weights."""

    format: Literal["piper", "vits"]
    sample_rate: int
    num_speakers: int
    language: str
    espeak_voice: str
    quality: str | None
    phoneme_id_map: dict[str, list[int]]
    id_style: IdStyle
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    speaker_id_map: dict[str, int] = field(default_factory=dict)
    model_section: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as error:
        raise VoiceLoadError(f"voice config {path} does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VoiceLoadError(f"voice config {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise VoiceLoadError(f"voice config {path} must hold a JSON object")
    return data


def _positive_int(value: Any, what: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise VoiceLoadError(f"voice config {path}: {what} must be a positive integer, got {value!r}")
    return value


def _scale(value: Any, default: float, what: str, path: Path) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise VoiceLoadError(f"voice config {path}: inference.{what} must be a non-negative number, got {value!r}")
    return float(value)


def read_piper_settings(path: Path) -> VoiceSettings:
    data = _read_json(path)
    audio = data.get("audio") or {}
    if not isinstance(audio, dict) or "sample_rate" not in audio:
        raise VoiceLoadError(f"voice config {path}: 'audio.sample_rate' is missing")
    id_map = data.get("phoneme_id_map")
    if not isinstance(id_map, dict) or not id_map:
        raise VoiceLoadError(f"voice config {path}: 'phoneme_id_map' is missing or empty")
    checked: dict[str, list[int]] = {}
    for symbol, ids in id_map.items():
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise VoiceLoadError(f"voice config {path}: phoneme_id_map[{symbol!r}] must be a list of integers")
        checked[symbol] = ids
    for required in ("^", "$", "_"):
        if required not in checked:
            raise VoiceLoadError(f"voice config {path}: phoneme_id_map lacks the {required!r} symbol")
    phoneme_type = data.get("phoneme_type", "espeak")
    if phoneme_type != "espeak":
        raise VoiceLoadError(f"voice config {path}: phoneme_type {phoneme_type!r} is not supported (only 'espeak')")
    inference = data.get("inference") or {}
    espeak_voice = (data.get("espeak") or {}).get("voice") or "en-us"
    language = (data.get("language") or {}).get("code") or espeak_voice
    speaker_map = data.get("speaker_id_map") or {}
    return VoiceSettings(
        format="piper",
        sample_rate=_positive_int(audio.get("sample_rate"), "audio.sample_rate", path),
        num_speakers=_positive_int(data.get("num_speakers", 1), "num_speakers", path),
        language=str(language),
        espeak_voice=str(espeak_voice),
        quality=audio.get("quality"),
        phoneme_id_map=checked,
        id_style="piper",
        noise_scale=_scale(inference.get("noise_scale"), 0.667, "noise_scale", path),
        length_scale=_scale(inference.get("length_scale"), 1.0, "length_scale", path),
        noise_w=_scale(inference.get("noise_w"), 0.8, "noise_w", path),
        speaker_id_map={str(k): int(v) for k, v in speaker_map.items()},
        dataset=data.get("dataset"),
    )


def read_vits_settings(path: Path) -> VoiceSettings:
    """Original VITS config: {"train": ..., "data": {...}, "model": {...}} plus optional extras.

    The original code keeps its symbol table in Python; a "symbols" list in the JSON (or a
    Piper-style "phoneme_id_map") overrides the release's default table.
    """
    data = _read_json(path)
    section = data.get("data")
    model = data.get("model")
    if not isinstance(section, dict) or not isinstance(model, dict):
        raise VoiceLoadError(f"voice config {path}: an original VITS config needs 'data' and 'model' sections")
    if "sampling_rate" not in section:
        raise VoiceLoadError(f"voice config {path}: 'data.sampling_rate' is missing")
    symbols = data.get("symbols") or section.get("symbols")
    if isinstance(data.get("phoneme_id_map"), dict):
        id_map = {str(k): list(v) for k, v in data["phoneme_id_map"].items()}
    else:
        if symbols is None:
            symbols = DEFAULT_VITS_SYMBOLS
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise VoiceLoadError(f"voice config {path}: 'symbols' must be a list of strings")
        id_map = {}
        for index, symbol in enumerate(symbols):
            id_map.setdefault(symbol, [index])
    n_speakers = section.get("n_speakers", 0) or 1
    espeak_voice = str(data.get("espeak_voice") or section.get("language") or "en-us")
    inference = data.get("inference") or {}
    return VoiceSettings(
        format="vits",
        sample_rate=_positive_int(section.get("sampling_rate"), "data.sampling_rate", path),
        num_speakers=_positive_int(n_speakers, "data.n_speakers", path),
        language=str(data.get("language") or espeak_voice),
        espeak_voice=espeak_voice,
        quality=data.get("quality"),
        phoneme_id_map=id_map,
        id_style="interspersed" if section.get("add_blank", True) else "plain",
        noise_scale=_scale(inference.get("noise_scale"), 0.667, "noise_scale", path),
        length_scale=_scale(inference.get("length_scale"), 1.0, "length_scale", path),
        noise_w=_scale(inference.get("noise_w"), 0.8, "noise_w", path),
        model_section=model,
    )
