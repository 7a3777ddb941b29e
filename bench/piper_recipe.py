"""Piper's own synthesis recipe (piper-tts 1.8, `PiperVoice`), re-done here for comparisons.

What Piper does with raw text:

1. eSpeak NG phonemizes it clause by clause (`espeak_TextToPhonemes` until the text is used
   up). Each clause's IPA loses eSpeak's language-switch flags such as `(fr)`, gets the clause's
   terminator appended (`.` `?` `!`, or `,` `:` `;` followed by a space) and is decomposed to
   NFD. Clauses are grouped into sentences at eSpeak's sentence ends.
2. Each sentence's phonemes become ids: BOS, pad, each symbol's ids followed by pad, EOS.
   `vits.text.encode_phonemes` is the same mapping (the symbols are the NFD codepoints, unknown
   ones are dropped with their pad), so it is used here.
3. One `session.run` per sentence with the voice config's scales, on an `InferenceSession`
   built with default `SessionOptions` (intra-op threads = physical cores, pinned, spinning on);
   each sentence's audio is peak-normalized and clipped (Piper's default `SynthesisConfig`).

Where this differs from Piper, by necessity: Piper's C bridge calls
`espeak_TextToPhonemesWithTerminator`, which reports each clause's terminator and whether it
ends a sentence. The eSpeak NG that `espeakng-loader` ships lacks that call, so the terminator
is read from the last non-space character eSpeak consumed, and a clause ends a sentence when
that character is `.` `?` or `!` (the text's end closes the last group anyway). Piper also
bundles its own eSpeak NG build, whose dictionaries may differ slightly from this one.

This runs on its own copy of the eSpeak library (phonemizer's wrapper loads one per instance),
so it shares no state with `vits.text.Phonemizer`.
"""

from __future__ import annotations

import ctypes
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vits.text import encode_phonemes

# eSpeak's phoneme mode for `espeak_TextToPhonemes`: IPA, no separators, no ties (as Piper).
_IPA = 0x02
_AUTO_ENCODING = 0  # espeakCHARS_AUTO, as Piper passes
_TERMINATORS = {".": ".", "?": "?", "!": "!", ",": ", ", ":": ": ", ";": "; "}
_SENTENCE_ENDS = frozenset(".?!")
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")

_espeak_lock = threading.Lock()
_espeak: Any = None


@dataclass(frozen=True)
class Clause:
    """One eSpeak clause as Piper keeps it: IPA with its terminator appended."""

    phonemes: str
    ends_sentence: bool


def _espeak_api(language: str) -> Any:
    """This module's eSpeak copy with `language` selected; call with `_espeak_lock` held."""
    global _espeak
    if _espeak is None:
        import espeakng_loader
        from phonemizer.backend.espeak.wrapper import EspeakWrapper

        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        _espeak = EspeakWrapper()._espeak
    # Piper selects the voice on every call, by name.
    if _espeak.set_voice_by_name(language.encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice {language!r}")
    return _espeak


def piper_clauses(text: str, language: str = "en-us") -> list[Clause]:
    """Piper's clause-by-clause eSpeak pass over raw `text` (see the module docstring)."""
    data = text.encode("utf-8")
    buffer = ctypes.c_char_p(data)
    start = ctypes.cast(buffer, ctypes.c_void_p).value or 0
    pointer = ctypes.pointer(buffer)
    clauses = []
    with _espeak_lock:
        api = _espeak_api(language)
        while pointer.contents.value is not None:
            ipa = api.text_to_phonemes(pointer, _AUTO_ENCODING, _IPA)
            rest = ctypes.cast(pointer.contents, ctypes.c_void_p).value
            # eSpeak leaves the pointer one past the character that ended the clause; NULL at the end.
            stop = (rest - start) if rest else len(data) + 1
            consumed = data[: max(stop - 1, 0)].rstrip(b" ")
            mark = chr(consumed[-1]) if consumed and consumed[-1] < 128 else ""
            phonemes = _LANGUAGE_FLAG.sub("", ipa.decode() if ipa else "") + _TERMINATORS.get(mark, "")
            clauses.append(Clause(unicodedata.normalize("NFD", phonemes), mark in _SENTENCE_ENDS))
    return clauses


def piper_sentence_phonemes(text: str, language: str = "en-us") -> list[str]:
    """Piper's phonemes of raw `text`, one string per sentence (empty groups dropped)."""
    sentences: list[str] = []
    current = ""
    for clause in piper_clauses(text, language):
        current += clause.phonemes
        if clause.ends_sentence:
            sentences.append(current)
            current = ""
    sentences.append(current)
    return [sentence for sentence in sentences if sentence]


class PiperRecipe:
    """A Piper voice (.onnx + .onnx.json) run the way Piper's `PiperVoice.synthesize` runs it."""

    def __init__(self, session: Any, config: dict[str, Any]) -> None:
        self.session = session
        self.config = config
        self.language: str = config["espeak"]["voice"]
        self.id_map: dict[str, list[int]] = config["phoneme_id_map"]
        self.sample_rate: int = config["audio"]["sample_rate"]
        inference = config.get("inference", {})
        self.scales = np.array(
            [inference.get("noise_scale", 0.667), inference.get("length_scale", 1.0), inference.get("noise_w", 0.8)],
            dtype=np.float32,
        )
        self.multi_speaker = config.get("num_speakers", 1) > 1

    @classmethod
    def load(cls, model_path: str | Path, config_path: str | Path | None = None, options: Any = None) -> PiperRecipe:
        """Load as Piper does: `options` default to `onnxruntime.SessionOptions()`, CPU provider."""
        import onnxruntime

        config_path = Path(f"{model_path}.json") if config_path is None else Path(config_path)
        config = json.loads(config_path.read_text(encoding="utf-8"))
        session = onnxruntime.InferenceSession(
            str(model_path),
            sess_options=onnxruntime.SessionOptions() if options is None else options,
            providers=["CPUExecutionProvider"],
        )
        return cls(session, config)

    def with_session(self, session: Any) -> PiperRecipe:
        """The same voice run by another session (one built with other options)."""
        return PiperRecipe(session, self.config)

    def sentence_ids(self, text: str) -> list[list[int]]:
        """Phoneme ids of raw `text`, one list per Piper sentence."""
        return [encode_phonemes(phonemes, self.id_map) for phonemes in piper_sentence_phonemes(text, self.language)]

    def audio_of_ids(self, ids: list[int]) -> np.ndarray:
        """One sentence: `session.run`, then Piper's peak normalization and clipping."""
        inputs = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": self.scales,
        }
        if self.multi_speaker:
            inputs["sid"] = np.array([0], dtype=np.int64)
        audio = self.session.run(None, inputs)[0].squeeze()
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        audio = np.zeros_like(audio) if peak < 1e-8 else audio / peak
        return np.clip(audio, -1.0, 1.0).astype(np.float32)

    def synthesize(self, text: str) -> np.ndarray:
        """Raw text to audio: Piper's sentences synthesized one by one and joined."""
        chunks = [self.audio_of_ids(ids) for ids in self.sentence_ids(text)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
