"""Phoneme strings to the integer ids a Piper-trained VITS voice expects."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence

from ..errors import VoiceLoadError

logger = logging.getLogger(__name__)

PAD = "_"
BOS = "^"
EOS = "$"

_warned: set[str] = set()


def encode_phonemes(phonemes: str, id_map: Mapping[str, Sequence[int]]) -> list[int]:
    """Piper's convention: BOS, pad, then each phoneme's ids followed by pad, then EOS.

    Symbols missing from `id_map` are dropped (with one warning per symbol and process): a
    stray character must not fail a whole job.
    """
    missing = [symbol for symbol in (PAD, BOS, EOS) if symbol not in id_map]
    if missing:
        raise VoiceLoadError(f"The voice's phoneme_id_map lacks the special symbols {missing}")
    pad = list(id_map[PAD])
    ids = list(id_map[BOS]) + pad
    # The voices were trained on NFD text: a precomposed character is a letter plus a mark.
    for symbol in unicodedata.normalize("NFD", phonemes):
        symbol_ids = id_map.get(symbol)
        if symbol_ids is None:
            if symbol not in _warned:
                _warned.add(symbol)
                logger.warning("Phoneme %r (U+%04X) is not in the voice's id map; dropped", symbol, ord(symbol))
            continue
        ids.extend(symbol_ids)
        ids.extend(pad)
    ids.extend(id_map[EOS])
    return ids
