"""Text to IPA phonemes with eSpeak NG, in the form Piper voices were trained on.

The library and its data come from `espeakng-loader`, so no system package is needed. The
eSpeak backend keeps global state in the C library and is not re-entrant: one backend per
process, created on first use, and every call goes through one lock.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from typing import Any

from ..errors import VoiceLoadError

logger = logging.getLogger(__name__)
# phonemizer warns on every sentence where eSpeak merges or splits words ("words count mismatch");
# that is expected and not actionable, so only its errors get through.
_espeak_logger = logging.getLogger(f"{__name__}.espeak")
_espeak_logger.setLevel(logging.ERROR)

# Piper strips tie bars and zero-width joiners, which eSpeak may put inside affricates.
_TIES = str.maketrans("", "", "\u0361\u200d")
# Piper's training phonemes carry only the clause punctuation eSpeak reports (. ? ! , : ;).
# Quotes, brackets and dashes that phonemizer passes through would be symbols the voice never
# heard in training (their embeddings are untrained), so they go; dashes become pauses.
_NOT_TRAINED = str.maketrans({ch: " " for ch in "\"()[]{}«»“”„‘’'¡¿‐-"} | {"—": ",", "–": ","})


def _piper_punctuation(phonemes: str) -> str:
    phonemes = phonemes.translate(_NOT_TRAINED)
    # An ellipsis is one period to eSpeak at the end, a pause in the middle.
    phonemes = re.sub(r"\s*(?:\.{2,}|…)\s*$", ".", phonemes)
    phonemes = re.sub(r"\s*(?:\.{2,}|…)\s*", ", ", phonemes)
    phonemes = re.sub(r"\s*([,:;])(?:\s*[,:;])*\s*", r"\1 ", phonemes)  # Piper: comma, then a space
    phonemes = re.sub(r"[,:;]?\s*([.?!])", r"\1", phonemes)  # no space or comma before a full stop
    phonemes = re.sub(r"[.?!]{2,}", lambda m: m.group(0)[-1], phonemes)  # eSpeak keeps the last mark
    return re.sub(r"\s+", " ", phonemes).strip(" ,:;")


_lock = threading.Lock()
_backends: dict[str, Any] = {}


def _reset_after_fork() -> None:
    # A child forked while another thread held the lock would wait forever; start it afresh.
    global _lock
    _lock = threading.Lock()
    _backends.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _backend(language: str) -> Any:
    """The process's eSpeak backend for `language`; call with `_lock` held."""
    backend = _backends.get(language)
    if backend is None:
        import espeakng_loader
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper

        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        if not EspeakBackend.is_supported_language(language):
            raise VoiceLoadError(f"eSpeak NG has no voice for language {language!r} (the voice's espeak.voice)")
        backend = EspeakBackend(
            language,
            preserve_punctuation=True,
            with_stress=True,
            language_switch="remove-flags",  # no "(fr)" markers in the phoneme string
            words_mismatch="ignore",
            logger=_espeak_logger,
        )
        _backends[language] = backend
    return backend


class Phonemizer:
    """eSpeak NG phonemizer producing Piper's conventions: stressed IPA, punctuation kept, NFD."""

    def __init__(self, language: str = "en-us") -> None:
        self.language = language

    def phonemize(self, sentence: str) -> str:
        """IPA for one sentence, e.g. "Hello, world." -> "həlˈoʊ, wˈɜːld."."""
        if not sentence.strip():
            return ""
        from phonemizer.separator import Separator

        separator = Separator(phone="", syllable="", word=" ")
        with _lock:
            output = _backend(self.language).phonemize([sentence], separator=separator, strip=True, njobs=1)
        phonemes = output[0] if output else ""
        return unicodedata.normalize("NFD", _piper_punctuation(phonemes.translate(_TIES)))
