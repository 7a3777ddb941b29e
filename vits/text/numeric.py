"""Rules that read digits aloud: money, percentages, units, dates, times, phone numbers, plain numbers.

The rules run in order, specific before generic: "$3.50" must be read as money before "3.50" could
be read as a plain decimal, and "2024-05-12" as a date before "-12" could look negative. Every rule
consumes the digits it reads, so the generic number rule at the end leaves no digit behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import numbers
from .abbreviations import MONTH_ABBREVIATIONS, MONTHS

# An integer with optional thousands separators; the separators must be well formed ("1,234").
_INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"

_NUMBER = rf"(?:{_INT})(?:\.\d+)?"

_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}

_CURRENCY_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}

_SCALES = {
    "thousand": "thousand",
    "k": "thousand",
    "million": "million",
    "m": "million",
    "mn": "million",
    "billion": "billion",
    "bn": "billion",
    "b": "billion",
    "trillion": "trillion",
    "t": "trillion",
}

# Units only count after a number, so the letters are safe to match. (singular, plural)
_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "m/s": ("meter per second", "meters per second"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "ms": ("millisecond", "milliseconds"),
    "μs": ("microsecond", "microseconds"),
    "μm": ("micrometer", "micrometers"),
    "μg": ("microgram", "micrograms"),
    "yd": ("yard", "yards"),
    "gal": ("gallon", "gallons"),
    "mins": ("minute", "minutes"),
    "secs": ("second", "seconds"),
    "h": ("hour", "hours"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
}

_UNIT_PATTERN = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))

_FRACTIONS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _words(number: str) -> str:
    """Read a number as written: "1,234.5" -> "one thousand two hundred thirty-four point five"."""
    negative = number.startswith("-")
    number = number.lstrip("-").replace(",", "")
    whole, _, fraction = number.partition(".")
    if len(whole) > 1 and whole.startswith("0"):
        said = numbers.digits(whole)  # "007", zip codes: leading zeros are said as digits
        if fraction:
            said += " point " + numbers.digits(fraction)
    elif fraction:
        said = numbers.decimal(whole, fraction)
    else:
        said = numbers.cardinal(int(whole))
    return ("minus " + said) if negative else said


def _is_one(number: str) -> bool:
    return number.lstrip("-") == "1"


def _currency(match: re.Match[str]) -> str:
    sign = "minus " if match.group("sign") else ""
    one, many, sub_one, sub_many = _CURRENCIES[match.group("sym")]
    whole = match.group("whole") or "0"
    fraction = match.group("fraction")
    scale = match.group("scale")
    if scale:
        amount = _words(whole + (f".{fraction}" if fraction else ""))
        return f" {sign}{amount} {_SCALES[scale.lower()]} {many} "
    if fraction is not None and len(fraction) != 2:
        return f" {sign}{_words(f'{whole}.{fraction}')} {many} "
    main = int(whole.replace(",", ""))
    cents = int(fraction) if fraction else 0
    if main == 0 and cents:
        return f" {sign}{numbers.cardinal(cents)} {sub_one if cents == 1 else sub_many} "
    said = f"{_words(whole)} {one if main == 1 else many}"
    if cents:
        said += f" {numbers.cardinal(cents)}"  # "three dollars fifty", the way people say prices
    return f" {sign}{said} "


def _currency_code(match: re.Match[str]) -> str:
    one, many, _, _ = _CURRENCIES[_CURRENCY_CODES[match.group("code")]]
    number = match.group("number")
    return f" {_words(number)} {one if _is_one(number) else many} "


def _unit(match: re.Match[str]) -> str:
    number = match.group("number")
    one, many = _UNITS[match.group("unit")]
    return f" {_words(number)} {one if _is_one(number) else many} "


def _temperature(match: re.Match[str]) -> str:
    number = match.group("number")
    scale = {"C": " Celsius", "F": " Fahrenheit", "K": " kelvin"}.get(match.group("scale") or "", "")
    return f" {_words(number)} {'degree' if _is_one(number) else 'degrees'}{scale} "


def _clock(hour: int, minute: int, suffix: str | None) -> str:
    if suffix:
        said = numbers.cardinal(hour)
        if minute:
            said += " " + (f"oh {numbers.cardinal(minute)}" if minute < 10 else numbers.cardinal(minute))
        return f"{said} {'AM' if suffix.lower().startswith('a') else 'PM'}"
    if minute == 0:
        return f"{numbers.cardinal(hour)} hundred" if hour == 0 or hour > 12 else f"{numbers.cardinal(hour)} o'clock"
    if minute < 10:
        return f"{numbers.cardinal(hour)} oh {numbers.cardinal(minute)}"
    return f"{numbers.cardinal(hour)} {numbers.cardinal(minute)}"


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group("hour")), int(match.group("minute"))
    seconds = match.group("second")
    suffix = match.group("suffix")
    if hour > 24 or minute > 59 or (suffix and hour > 12):
        return match.group(0).replace(":", " ")  # not a clock time; read the numbers plainly
    said = _clock(hour, minute, suffix)
    if seconds and int(seconds):
        said += f" and {numbers.cardinal(int(seconds))} seconds"
    return f" {said} " + _suffix_period(match)


def _suffix_period(match: re.Match[str]) -> str:
    # "at 5 p.m." at the end of a sentence: the period was also its full stop.
    suffix = match.group("suffix") or ""
    at_end = not match.string[match.end() :].strip(" \"')")
    return "." if suffix.endswith(".") and at_end else ""


def _hour(match: re.Match[str]) -> str:
    hour = int(match.group("hour"))
    if not 1 <= hour <= 12:
        return match.group(0)
    return f" {_clock(hour, 0, match.group('suffix'))} " + _suffix_period(match)


def _year_2(text: str) -> int:
    value = int(text)
    if len(text) == 4:
        return value
    return 2000 + value if value <= 50 else 1900 + value  # "24" -> 2024, "99" -> 1999


def _date(month: int, day: int, year: int | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    said = f"{MONTHS[month - 1]} {numbers.ordinal(day)}"
    return f"{said}, {numbers.year(year)}" if year is not None else said


def _slash_date(match: re.Match[str]) -> str:
    first, second = int(match.group("a")), int(match.group("b"))
    year = _year_2(match.group("year"))
    # US order (month/day) unless that is impossible and the day/month reading is not.
    said = _date(first, second, year) if first <= 12 else _date(second, first, year)
    return f" {said} " if said else match.group(0).replace("/", " slash ")


def _short_date(match: re.Match[str]) -> str:
    first, second = int(match.group("a")), int(match.group("b"))
    said = _date(first, second, None) if first <= 12 else _date(second, first, None)
    return said or match.group(0)


def _iso_date(match: re.Match[str]) -> str:
    said = _date(int(match.group("month")), int(match.group("day")), int(match.group("year")))
    return f" {said} " if said else match.group(0)


def _month_and_day(match: re.Match[str]) -> tuple[str, int] | None:
    """The spelled-out month and the day of a written date, or None when the day is impossible."""
    month = match.group("month")
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return None
    return MONTH_ABBREVIATIONS.get(month.rstrip("."), month), day


def _month_day(match: re.Match[str]) -> str:
    parsed = _month_and_day(match)
    if parsed is None:
        return match.group(0)
    month, day = parsed
    year = match.group("year")
    said = f"{month} {numbers.ordinal(day)}"
    return f" {said}, {numbers.year(int(year))} " if year else f" {said} "


def _day_month(match: re.Match[str]) -> str:
    parsed = _month_and_day(match)
    if parsed is None:
        return match.group(0)
    month, day = parsed
    year = match.group("year")
    # "the 4th of July" already has its article.
    article = "" if match.string[max(0, match.start() - 8) : match.start()].rstrip().lower().endswith("the") else "the "
    said = f"{article}{numbers.ordinal(day)} of {month}"
    return f" {said}, {numbers.year(int(year))} " if year else f" {said} "


def _fraction(match: re.Match[str]) -> str:
    top, bottom = int(match.group("top")), int(match.group("bottom"))
    if bottom in _FRACTIONS:
        one, many = _FRACTIONS[bottom]
    else:
        one = numbers.ordinal(bottom)
        many = one + "s"
    return f" {numbers.cardinal(top)} {one if top == 1 else many} "


def _plural(words: str) -> str:
    # "nineteen ninety" -> "nineteen nineties", "nineteen hundred" -> "nineteen hundreds"
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _decade(match: re.Match[str]) -> str:
    digits = match.group("digits")
    if len(digits) == 2:
        return f" {_plural(numbers.cardinal(int(digits)))} "  # "the '80s"
    if 1100 <= int(digits) <= 2099:
        return f" {_plural(numbers.year(int(digits)))} "  # "the 1990s", "the 2000s"
    return f" {_plural(numbers.cardinal(int(digits)).removeprefix('one '))} "  # "1000s of" -> "thousands of"


_YEAR_CUES = {"in", "year", "since", "until", "ad", "bc", "circa"}


def _plain_number(match: re.Match[str]) -> str:
    number = match.group(0)
    plain = number.lstrip("-")
    if plain.isdigit() and len(plain) == 4 and not number.startswith("-"):
        value = int(plain)
        before = match.string[max(0, match.start() - 8) : match.start()].split()
        # Most bare four-digit numbers in prose are years; "in 1066", "year 2525" certainly are.
        if 1100 <= value <= 2099 or (before and before[-1].lower() in _YEAR_CUES and value >= 1000):
            return f" {numbers.year(value)} "
    if plain.replace(",", "").isdigit() and len(plain.replace(",", "")) > 15:
        return f" {numbers.digits(plain)} "
    return f" {_words(number)} "


def _dotted_number(match: re.Match[str]) -> str:
    # Version numbers and addresses: "3.11.2" -> "three point eleven point two".
    return " " + " point ".join(_words(part) for part in match.group(0).split(".")) + " "


def _zip_code(match: re.Match[str]) -> str:
    # "DC 20500": after a state code five digits are a ZIP code, read digit by digit.
    said = f"{match.group('state')} {numbers.digits(match.group('zip'))}"
    if match.group("plus4"):
        said += f", {numbers.digits(match.group('plus4'))}"
    return said


def _phone(match: re.Match[str]) -> str:
    groups = [group for group in match.groups() if group]
    return " " + ", ".join(numbers.digits(group) for group in groups) + " "


# After these words a Roman numeral is a plain number: "World War II" -> "World War two".
_ROMAN_COUNTERS = {
    "War",
    "Chapter",
    "Part",
    "Volume",
    "Vol",
    "Act",
    "Scene",
    "Book",
    "Phase",
    "Type",
    "Class",
    "Level",
    "Stage",
    "Section",
    "Article",
    "Title",
    "Bowl",
    "Episode",
    "Season",
    "Appendix",
    "Round",
    "Apollo",
}

_ROMAN_RE = re.compile(r"\b(?P<previous>[A-Z][a-z]+) (?P<numeral>[IVXLC]+)\b(?!['.]\w)")


def _roman(match: re.Match[str]) -> str:
    numeral, previous = match.group("numeral"), match.group("previous")
    value = numbers.roman(numeral)
    if value is None:
        return match.group(0)
    if previous in _ROMAN_COUNTERS:
        return f"{previous} {numbers.cardinal(value)}"
    if len(numeral) < 2 or value > 39:
        return match.group(0)  # "Then I left", "Tom CC'd": a lone letter or an L/C is too risky
    return f"{previous} the {numbers.ordinal(value)}"  # regnal: "Henry VIII" -> "Henry the eighth"


_Replacement = str | Callable[[re.Match[str]], str]
_RULES: list[tuple[re.Pattern[str], _Replacement]] = []


def _sub(pattern: str, replacement: _Replacement, flags: int = 0) -> None:
    _RULES.append((re.compile(pattern, flags), replacement))


# Order matters: specific patterns (money, dates, times) before generic numbers and symbols.
# Patterns that start with a number begin with a look-behind so that a long run of digits is
# tried from its first digit only (otherwise every position re-scans the run: quadratic).
_sub(r"(\d)\s*[–—]\s*(\d)", r"\1 to \2")  # an en dash between numbers is a range
_sub(r"~\s?(?=[$£€¥₹]?\d)", " about ")
_sub(r"(?<![\d-])(?:\+?(1)[ -])?\(?(\d{3})\)?[ -](\d{3})-(\d{4})(?![\d-])", _phone)
_sub(r"(?<![\d-])(\d{3})-(\d{4})(?![\d-])", lambda m: _phone(m) if int(m.group(2)) % 100 else m.group(0))
_sub(r"(?<=\d):(?=\d(?!\d))", " to ")  # "a 3:1 ratio"; clock times always have two-digit minutes
_sub(r"\b(?P<state>[A-Z]{2}) (?P<zip>\d{5})(?:-(?P<plus4>\d{4}))?\b", _zip_code)
_sub(r"(?<![\w.])(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\d)", _iso_date)
_sub(r"(?<![\w/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4}|\d{2})(?![\w/])", _slash_date)
_sub(r"(?<=\bon )(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\w/])", lambda m: _short_date(m))  # "on 7/4"
_sub(r"(?<=[\d%])-(?=[$£€¥₹]?\d)", " to ")  # "10-20%", "$5-$10": ranges (dates and phones are gone)
_sub(r"(?<=\d)\s+-\s+(?=[$£€¥₹]?\d)", " minus ")  # "10 - 5" with spaces is arithmetic
_sub(r"(?<=\d)\s?/\s?(?=[A-Za-z])", " per ")  # "$3.50/hour", "100 calls/day"
_sub(r"(?<=\bper )(?P<unit>" + _UNIT_PATTERN + r")\b", lambda m: _UNITS[m.group("unit")][0])  # "per lb"
_sub(r"\bv(?=\d)", "version ")  # "v18"
_sub(r"(?<![\w.'])(?P<feet>\d)'\s?(?P<inches>\d{1,2})(?:\"|'')?(?![\w'])", r" \g<feet> foot \g<inches> ")  # 5'10"
_sub(r"(?<=\d)\s?[x×]\s?(?=\d)", " by ")  # "4x4", "1920x1080"
_sub(r"(?<=\d)x\b", " times ")  # "2x faster"
_sub(r"(?<=\d)\s?\*\s?(?=\d)", " times ")  # "3 * 4"
_sub(r"\^\s?(?=\d)", " to the power of ")  # "x^2"
_sub(
    r"(?P<sign>-)?(?P<sym>[$£€¥₹])\s?(?P<whole>" + _INT + r")?(?:\.(?P<fraction>\d+))?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|mn|[kKmMbBtT])\b)?",
    lambda m: _currency(m) if m.group("whole") or m.group("fraction") else m.group(0),
)
_sub(r"(?<![\d,.])(?P<number>" + _NUMBER + r")\s?¢", lambda m: f" {_words(m.group('number'))} cents ")
_sub(r"(?<![\d,.])(?P<number>-?" + _NUMBER + r")\s?(?P<code>USD|EUR|GBP|JPY|INR)\b", _currency_code)
_sub(r"(?<![\d,.])(?P<number>-?" + _NUMBER + r")\s?%", lambda m: f" {_words(m.group('number'))} percent ")
_sub(r"(?<![\d,.])(?P<number>-?" + _NUMBER + r")\s?°\s?(?P<scale>[CFK])?\b", _temperature)
_MONTH_NAMES = "|".join(MONTHS) + "|" + "|".join(rf"{abbr}\.?" for abbr in MONTH_ABBREVIATIONS)
_sub(
    rf"\b(?P<month>{_MONTH_NAMES})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?",
    _month_day,
)
_sub(
    rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH_NAMES})(?![\w.])(?:,?\s+(?P<year>\d{{4}})\b)?",
    _day_month,
)
_AMPM = r"(?P<suffix>[ap]\.m\.|[AP]\.M\.|[ap]m\b|[AP]M\b)"
_sub(
    r"(?<![\d:])(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?![\d:])(?:\s?" + _AMPM + r")?",
    _time,
)
_sub(r"(?<![\d.:])(?P<hour>\d{1,2})\s?" + _AMPM, _hour)
_sub(r"(?<![\w.])'?(?P<digits>(?:1[1-9]|20)\d0|[1-9]0*00|\d0)s\b", _decade)
_sub(r"(?<![\w.])(?P<number>" + _NUMBER + r")\s?(?P<unit>" + _UNIT_PATTERN + r")(?![\w/])", _unit)
_sub(
    # "1.5M users", "3bn"; a bare "4B" is more often a room or a pencil than four billion.
    r"(?<![\w.])(?P<number>"
    + _INT
    + r"\.\d+)(?P<scale>M|B)\b|(?<![\w.])(?P<number2>"
    + _NUMBER
    + r")(?P<scale2>bn|mn)\b",
    lambda m: (
        f" {_words(m.group('number') or m.group('number2'))} "
        f"{_SCALES[(m.group('scale') or m.group('scale2')).lower()]} "
    ),
)
_sub(
    r"(?<![\w.])(?P<n>" + _INT + r")(?P<suffix>st|nd|rd|th)\b",
    lambda m: f" {numbers.ordinal(int(m.group('n').replace(',', '')))} ",
    re.IGNORECASE,
)
_sub(
    r"(?<![\w/.])(?P<top>\d)/(?P<bottom>[2-9]|10)(?![\w/])",
    lambda m: _fraction(m) if int(m.group("top")) < int(m.group("bottom")) else m.group(0),
)
_sub(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w.]*\d)", _dotted_number)
_sub(r"#\s?(?=\d)", " number ")
_sub(r"(?<![\w/])24/7(?![\w/])", " twenty-four seven ")
_sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ")  # "MP3" -> "MP 3", "4K" -> "4 K"
_sub(r"(?<=[A-Za-z])-(?=\d)", " ")  # "COVID-19" is "COVID nineteen", not "minus nineteen"
_sub(r"(?:(?<=^)|(?<=[\s(]))-?(?:" + _NUMBER + r")|(?:" + _NUMBER + r")|\.\d+", _plain_number)


def expand_numbers(text: str) -> str:
    """Replace every number (and Roman numeral in a known context) in `text` with words."""
    text = _ROMAN_RE.sub(_roman, text)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
