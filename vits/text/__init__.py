"""English text front end: validation, sentence splitting, normalization, phonemes and ids.

Typical use::

    sentences = prepare_sentences(text)          # raises vits.errors.VitsInputError on bad text
    phonemes = Phonemizer("en-us").phonemize(sentences[0])
    ids = encode_phonemes(phonemes, config["phoneme_id_map"])
"""

from __future__ import annotations

from .encode import encode_phonemes
from .normalize import normalize_text
from .phonemize import Phonemizer
from .prepare import prepare_sentences, validate_text
from .sentences import split_sentences

__all__ = [
    "Phonemizer",
    "encode_phonemes",
    "normalize_text",
    "prepare_sentences",
    "split_sentences",
    "validate_text",
]
