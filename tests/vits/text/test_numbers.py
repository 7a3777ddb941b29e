from __future__ import annotations

import pytest

from vits.text import numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty-one"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety-nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (12_345, "twelve thousand three hundred forty-five"),
        (1_000_000, "one million"),
        (2_000_000_003, "two billion three"),
        (-42, "minus forty-two"),
    ],
)
def test_cardinal(value: int, expected: str) -> None:
    assert numbers.cardinal(value) == expected


def test_cardinal_reads_huge_numbers_digit_by_digit() -> None:
    assert numbers.cardinal(10**15) == "one " + " ".join(["zero"] * 15)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (12, "twelfth"),
        (20, "twentieth"),
        (22, "twenty-second"),
        (101, "one hundred first"),
        (1000, "one thousandth"),
    ],
)
def test_ordinal(value: int, expected: str) -> None:
    assert numbers.ordinal(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1066, "ten sixty-six"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (1999, "nineteen ninety-nine"),
        (2000, "two thousand"),
        (2005, "two thousand five"),
        (2010, "twenty ten"),
        (2024, "twenty twenty-four"),
        (3000, "three thousand"),
        (800, "eight hundred"),
    ],
)
def test_year(value: int, expected: str) -> None:
    assert numbers.year(value) == expected


def test_decimal_and_digits() -> None:
    assert numbers.decimal("3", "14") == "three point one four"
    assert numbers.decimal("", "5") == "zero point five"
    assert numbers.digits("007") == "zero zero seven"
