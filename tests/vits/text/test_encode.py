from __future__ import annotations

import logging

import pytest

from vits.errors import VoiceLoadError
from vits.text import encode as encode_module
from vits.text import encode_phonemes

ID_MAP = {"_": [0], "^": [1], "$": [2], " ": [3], "a": [4], "b": [5], "ˈ": [6], "\u0303": [7]}


def test_piper_convention_bos_pad_interleaved_eos() -> None:
    assert encode_phonemes("ab", ID_MAP) == [1, 0, 4, 0, 5, 0, 2]
    assert encode_phonemes("ˈa b", ID_MAP) == [1, 0, 6, 0, 4, 0, 3, 0, 5, 0, 2]


def test_empty_phonemes_still_have_bos_and_eos() -> None:
    assert encode_phonemes("", ID_MAP) == [1, 0, 2]


def test_precomposed_characters_are_decomposed_like_training_data() -> None:
    # "ã" precomposed is "a" + combining tilde in NFD; both symbols have ids.
    assert encode_phonemes("\u00e3", ID_MAP) == [1, 0, 4, 0, 7, 0, 2]


def test_unknown_symbols_are_dropped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    encode_module._warned.discard("Z")
    with caplog.at_level(logging.WARNING, logger="vits.text.encode"):
        assert encode_phonemes("aZbZ", ID_MAP) == [1, 0, 4, 0, 5, 0, 2]
        encode_phonemes("Z", ID_MAP)
    warnings = [record for record in caplog.records if "'Z'" in record.getMessage()]
    assert len(warnings) == 1


def test_multi_id_symbols_are_all_emitted() -> None:
    assert encode_phonemes("a", {**ID_MAP, "a": [4, 9]}) == [1, 0, 4, 9, 0, 2]


def test_map_without_special_symbols_is_a_broken_voice() -> None:
    with pytest.raises(VoiceLoadError, match=r"\$"):
        encode_phonemes("a", {"_": [0], "^": [1], "a": [4]})
