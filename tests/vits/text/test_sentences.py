from __future__ import annotations

import time

import pytest

from vits.text import split_sentences
from vits.text.sentences import cut_long


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It is late. Go home.", ["It is late.", "Go home."]),
        ("Dr. Smith went home. He was tired!", ["Dr. Smith went home.", "He was tired!"]),
        ("Mr. and Mrs. Jones met Prof. X.", ["Mr. and Mrs. Jones met Prof. X."]),
        ("J. R. R. Tolkien wrote books. Pi is 3.14 today.", ["J. R. R. Tolkien wrote books.", "Pi is 3.14 today."]),
        ("The U.S. Army is big.", ["The U.S. Army is big."]),
        ("Take vitamin C. Then rest.", ["Take vitamin C.", "Then rest."]),
        ("A book by J. K. Rowling.", ["A book by J. K. Rowling."]),
        ("John F. Kennedy spoke.", ["John F. Kennedy spoke."]),
        ("Fruit, e.g. apples, i.e. food.", ["Fruit, e.g. apples, i.e. food."]),
        ("See No. 5 on Jan. 5 please.", ["See No. 5 on Jan. 5 please."]),
        ("Wait... what? Really?! Yes.", ["Wait... what?", "Really?!", "Yes."]),
        ("I waited… Then it came.", ["I waited…", "Then it came."]),
        ('"Hello," she said. "Go away." Fine.', ['"Hello," she said.', '"Go away."', "Fine."]),
        ('He asked "Really?" and left.', ['He asked "Really?" and left.']),
        ("“Stop!” He ran.", ["“Stop!”", "He ran."]),
        ("Meet at 5 p.m. Then we eat.", ["Meet at 5 p.m.", "Then we eat."]),
        ("Apples, pears, etc. and more.", ["Apples, pears, etc. and more."]),
        ("Apples, pears, etc. Then more.", ["Apples, pears, etc.", "Then more."]),
        ("So do I. Then go.", ["So do I.", "Then go."]),
        ("He lives on Main St. Then we left.", ["He lives on Main St.", "Then we left."]),
        ("Visit St. Louis today.", ["Visit St. Louis today."]),
        ("Hello Dr. Smith. Bye.", ["Hello Dr. Smith.", "Bye."]),
        ("It works (see Fig. 4). Next.", ["It works (see Fig. 4).", "Next."]),
        ("Meet at 5 p.m. I will wait.", ["Meet at 5 p.m.", "I will wait."]),
        ("At 1600 Pennsylvania Ave. NW, Washington.", ["At 1600 Pennsylvania Ave. NW, Washington."]),
        ("Costs $3.50. Pay now.", ["Costs $3.50.", "Pay now."]),
        ("Para one.\n\nPara two", ["Para one.", "Para two"]),
        ("A heading\nThe body text.", ["A heading", "The body text."]),
        ("a hard wrapped\nline goes on.", ["a hard wrapped line goes on."]),
        ("Windows\r\nline\r\nends", ["Windows line ends"]),
        ("One\u2029Two\u2028Three", ["One", "Two", "Three"]),
        ("Page one.\fPage two.", ["Page one.", "Page two."]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("1. Apples\n2. Pears", ["1. Apples", "2. Pears"]),
        ("Top 10 tips. Read them.", ["Top 10 tips.", "Read them."]),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_clause_boundaries_first() -> None:
    first = "word " * 30 + "end; "
    text = first + "more " * 30 + "done, " + "tail " * 10
    pieces = split_sentences(text, max_chars=200)
    assert all(len(piece) <= 200 for piece in pieces)
    assert pieces[0].endswith(";")
    assert " ".join(pieces).split() == text.split()


def test_comma_is_preferred_over_a_plain_space() -> None:
    text = "alpha beta gamma, delta epsilon zeta eta theta iota kappa"
    assert cut_long(text, 40) == ["alpha beta gamma,", "delta epsilon zeta eta theta iota kappa"]


def test_dash_boundary() -> None:
    text = "one two three four five six — seven eight nine ten eleven"
    pieces = cut_long(text, 40)
    assert pieces[0].endswith("—")
    assert all(len(piece) <= 40 for piece in pieces)


def test_sentence_without_boundaries_is_cut_at_spaces_or_hard() -> None:
    assert all(len(piece) <= 10 for piece in cut_long("aaaa bbbb cccc dddd eeee", 10))
    assert cut_long("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_no_piece_exceeds_max_chars_and_no_text_is_lost() -> None:
    text = ("This is a rather long sentence, with commas; and semicolons: and more words " * 12).strip()
    for limit in (20, 50, 80, 250):
        pieces = split_sentences(text, max_chars=limit)
        assert all(0 < len(piece) <= limit for piece in pieces)
        assert " ".join(pieces).split() == text.split()


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_sentences("hello", max_chars=0)


def test_splitting_is_linear_in_the_text_length() -> None:
    # Each decision looks at a small window; a quadratic scan would take minutes here.
    started = time.perf_counter()
    assert len(split_sentences("Dr. " * 20_000, max_chars=250)) > 300
    assert time.perf_counter() - started < 2
