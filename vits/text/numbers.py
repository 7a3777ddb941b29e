"""English number words: cardinals, ordinals, decimals, years and digit strings.

Written here (no num2words) so the readings are ours to tune and stay stable across releases.
"""

from __future__ import annotations

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))

# Above this a number is read digit by digit: nobody says "three quintillion ..." for an id.
MAX_CARDINAL = 10**15 - 1

_ORDINAL_EXCEPTIONS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_thousand(n: int) -> str:
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(f"{_ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest or not hundreds:
        words.append(_ONES[rest])
    return " ".join(words)


def cardinal(n: int) -> str:
    """`1234` -> "one thousand two hundred thirty-four" (American style, no "and")."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > MAX_CARDINAL:
        return digits(str(n))
    if n < 1000:
        return _below_thousand(n)
    words = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            words.append(f"{_below_thousand(count)} {name}")
    if n:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    """`22` -> "twenty-second"."""
    words = cardinal(n)
    # Only the last word (after a space or hyphen) changes: "twenty-one" -> "twenty-first".
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _ORDINAL_EXCEPTIONS:
        last = _ORDINAL_EXCEPTIONS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + last


def digits(text: str) -> str:
    """`"0042"` -> "zero zero four two": for ids, phone numbers and decimals."""
    return " ".join(_ONES[int(ch)] for ch in text if ch.isdigit())


def decimal(integer_part: str, fraction_part: str) -> str:
    """`("3", "14")` -> "three point one four"; the integer part may be empty (".5")."""
    whole = cardinal(int(integer_part)) if integer_part else "zero"
    return f"{whole} point {digits(fraction_part)}"


def year(n: int) -> str:
    """Read a year the way people say it: 1999 -> "nineteen ninety-nine", 2024 -> "twenty twenty-four"."""
    if n < 1000 or n > 9999:
        return cardinal(n)
    high, low = divmod(n, 100)
    if 2000 <= n <= 2009:
        return cardinal(n)  # "two thousand five" is what Americans say
    if n % 1000 == 0:
        return cardinal(n)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {_ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman(text: str) -> int | None:
    """Value of a well-formed Roman numeral ("XIV" -> 14), or None if `text` is not one."""
    if not text or any(ch not in _ROMAN for ch in text):
        return None
    total = 0
    for ch, following in zip(text, [*text[1:], ""], strict=True):
        value = _ROMAN[ch]
        total += -value if following and _ROMAN[following] > value else value
    # Round-tripping rejects malformed strings such as "IIII" or "VX".
    return total if _to_roman(total) == text else None


def _to_roman(n: int) -> str:
    out = []
    for value, symbol in (
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ):
        count, n = divmod(n, value)
        out.append(symbol * count)
    return "".join(out)
