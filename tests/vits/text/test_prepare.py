from __future__ import annotations

import pytest

from vits.errors import EmptyTextError, InvalidTextError, UnspeakableTextError, VitsInputError
from vits.text import prepare_sentences


def test_prepares_normalized_sentences() -> None:
    text = "Dr. Smith paid $3.50 on 12/05/2024. Was it 3:30 pm? Yes!"
    assert prepare_sentences(text) == [
        "Doctor Smith paid three dollars fifty on December fifth, twenty twenty-four.",
        "Was it three thirty PM?",
        "Yes!",
    ]


def test_drops_sentences_with_nothing_to_say() -> None:
    assert prepare_sentences("Hello there.\n\n***\n\n😀😀\n\nBye.") == ["Hello there.", "Bye."]


def test_normalized_sentences_respect_max_chars() -> None:
    # Digits grow when spelled out, so the limit is enforced after normalization too.
    text = " ".join(["1234567"] * 8)
    sentences = prepare_sentences(text, max_chars=60)
    assert all(len(sentence) <= 60 for sentence in sentences)
    assert len(sentences) > 1


def test_long_urls_are_allowed() -> None:
    url = "https://example.com/" + "a" * 150
    assert prepare_sentences(f"Go to {url} now")[0].startswith("Go to example dot com slash")


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n", "\u3000"])
def test_empty_text(text: str) -> None:
    with pytest.raises(EmptyTextError) as error:
        prepare_sentences(text)
    assert error.value.field == "text"
    assert "empty" in str(error.value)


@pytest.mark.parametrize("text", ["hello\x00world", "bell\x07", "escape \x1b[31m red", "del\x7f", "lone \ud800"])
def test_control_characters_are_rejected(text: str) -> None:
    with pytest.raises(InvalidTextError) as error:
        prepare_sentences(text)
    assert error.value.field == "text"
    assert "U+" in str(error.value) and "Remove" in str(error.value)


def test_normal_whitespace_is_accepted() -> None:
    assert prepare_sentences("tabs\tand\r\nnewlines\x85and\fpage breaks") == ["tabs and newlines and", "page breaks"]


def test_absurdly_long_word_is_rejected() -> None:
    with pytest.raises(InvalidTextError) as error:
        prepare_sentences("look " + "a" * 101)
    assert error.value.field == "text"
    assert "101 characters" in str(error.value)


def test_word_of_exactly_the_limit_is_accepted() -> None:
    assert prepare_sentences("b" * 100)


@pytest.mark.parametrize(
    "text", ["😀", "😀 🎉 👍", "!!! ???", "*** --- ...", "#", "(*)", "~~~", "\u200b\u200d", "你好", "Привет!"]
)
def test_unspeakable_text(text: str) -> None:
    with pytest.raises(UnspeakableTextError) as error:
        prepare_sentences(text)
    assert error.value.field == "text"
    assert "nothing that can be read aloud" in str(error.value)


def test_symbols_that_have_names_are_speakable() -> None:
    assert prepare_sentences("+") == ["plus"]
    assert prepare_sentences("42") == ["forty-two"]


def test_all_errors_are_vits_input_errors_and_value_errors() -> None:
    for text in ["", "\x00", "😀"]:
        with pytest.raises(VitsInputError):
            prepare_sentences(text)
        with pytest.raises(ValueError):
            prepare_sentences(text)


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(InvalidTextError):
        prepare_sentences(None)  # type: ignore[arg-type]


def test_long_text_is_prepared_quickly() -> None:
    import time

    text = "Dr. Smith paid $3.50 on 12/05/2024 at 3:30 pm. The U.S. Army walked 5 km! " * 200
    started = time.perf_counter()
    sentences = prepare_sentences(text)
    assert time.perf_counter() - started < 5
    assert len(sentences) == 400


def test_prepared_sentences_are_already_normalized() -> None:
    from vits.text import normalize_text

    text = (
        "On Jan. 15, 2024, Apple Inc. reported $119.6 billion, up 2%. Dr. O'Neil spoke at 9:30 a.m. "
        "in Room 4B, 221B Baker St., London! Visit https://example.com/help or call (555) 010-4477. "
        + "Numbers like 1234567 grow when spelled out, "
        * 6
    )
    for sentence in prepare_sentences(text, max_chars=120):
        assert normalize_text(sentence) == sentence
        assert len(sentence) <= 120
