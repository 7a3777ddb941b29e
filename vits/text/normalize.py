"""English text normalization: turn digits, symbols and abbreviations into the words a reader says.

eSpeak alone reads "$3.50" as "dollar three point five zero" and "12/05/2024" with slashes, so
everything eSpeak would read badly is spelled out here. The output has no digits left, which is
what makes `normalize_text` idempotent: every rule that could fire twice starts from a digit, a
symbol or a dotted abbreviation, and none of those survive the first pass.
"""

from __future__ import annotations

import re
import unicodedata

from . import numbers
from .abbreviations import BEFORE_NUMBER, DOTTED, MONTH_ABBREVIATIONS, MONTHS, OTHERS, TITLES
from .urls import replace_urls

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
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
}
_UNIT_PATTERN = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))

_FRACTIONS = {2: ("half", "halves"), 4: ("quarter", "quarters")}

# Typographic punctuation mapped onto the few marks the voice knows (see the phoneme id map).
_PUNCTUATION = str.maketrans(
    {
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‹": "'",
        "›": "'",
        "`": "'",
        "´": "'",
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
        "¡": " ",
        "¿": " ",
        "…": "...",
        "−": "-",
        "‐": "-",
        "‑": "-",
        "⁄": "/",
    }
)
_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "=": " equals ",
    "@": " at ",
    "%": " percent ",
    "×": " times ",
    "÷": " divided by ",
    "±": " plus or minus ",
    "<": " less than ",
    ">": " greater than ",
    "°": " degrees ",
    "§": " section ",
    "≥": " greater than or equal to ",
    "≤": " less than or equal to ",
    "≠": " not equal to ",
    "≈": " approximately ",
    "/": " slash ",
    "©": " copyright ",
}
_KEEP = set(".,!?;:'\"()-")


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


def _iso_date(match: re.Match[str]) -> str:
    said = _date(int(match.group("month")), int(match.group("day")), int(match.group("year")))
    return f" {said} " if said else match.group(0)


def _month_day(match: re.Match[str]) -> str:
    month = match.group("month")
    month = MONTH_ABBREVIATIONS.get(month.rstrip("."), month)
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return match.group(0)
    year = match.group("year")
    said = f"{month} {numbers.ordinal(day)}"
    return f" {said}, {numbers.year(int(year))} " if year else f" {said} "


def _day_month(match: re.Match[str]) -> str:
    month = match.group("month")
    month = MONTH_ABBREVIATIONS.get(month.rstrip("."), month)
    day = int(match.group("day"))
    if not 1 <= day <= 31:
        return match.group(0)
    year = match.group("year")
    # "the 4th of July" already has its article.
    article = "" if match.string[: match.start()].rstrip().lower().endswith("the") else "the "
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
        return f" {_plural(numbers.cardinal(int(digits)))} "
    return f" {_plural(numbers.year(int(digits)))} "


def _plain_number(match: re.Match[str]) -> str:
    number = match.group(0)
    plain = number.lstrip("-")
    if plain.isdigit() and len(plain) == 4 and 1100 <= int(plain) <= 2099 and not number.startswith("-"):
        return f" {numbers.year(int(plain))} "  # most bare four-digit numbers in prose are years
    if plain.replace(",", "").isdigit() and len(plain.replace(",", "")) > 15:
        return f" {numbers.digits(plain)} "
    return f" {_words(number)} "


def _dotted_number(match: re.Match[str]) -> str:
    # Version numbers and addresses: "3.11.2" -> "three point eleven point two".
    return " " + " point ".join(_words(part) for part in match.group(0).split(".")) + " "


def _phone(match: re.Match[str]) -> str:
    groups = [group for group in match.groups() if group]
    return " " + ", ".join(numbers.digits(group) for group in groups) + " "


def _title(match: re.Match[str]) -> str:
    word, before, after = match.group("word"), match.group("before"), match.group("after")
    previous = before.split()[-1] if before.split() else ""
    prev_is_name = bool(previous[:1].isupper() or previous[:1].isdigit())
    next_is_name = after[:1].isupper()
    if word == "St" and ((prev_is_name and not next_is_name) or previous[:1].isdigit()):
        said = "Street"
    elif word == "Dr" and prev_is_name and not next_is_name:
        said = "Drive"
    else:
        said = TITLES[word]
    return f"{before}{said}{'.' if not after.strip() else ''}{after}"


def _abbreviation(expansion: str, match: re.Match[str]) -> str:
    # Keep the period when the abbreviation ends the text: it was also the sentence's full stop.
    at_end = not match.string[match.end() :].strip(" \"')")
    return expansion + ("." if at_end else "")


def _cleanup(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,!?;:)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\(\)", " ", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)  # ", ," left where symbols were dropped
    text = re.sub(r"^[\s,;:.]+", "", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def _unicode(text: str) -> str:
    """Canonical characters: other scripts' digits, full-width forms, ligatures, typographic marks."""
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)
    text = text.replace("²", " squared ").replace("³", " cubed ")
    text = re.sub(r"[™®]", " ", text)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_PUNCTUATION)
    # Format characters (zero-width joiners, BOM, soft hyphens, bidi marks) are invisible noise.
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text if unicodedata.category(ch) != "Cf")


_TITLE_RE = re.compile(r"(?P<before>(?:^|.*?\s|\())(?P<word>" + "|".join(TITLES) + r")\.(?P<after>\s*\S?)")
_RULES: list[tuple[re.Pattern[str], object]] = []


def _sub(pattern: str, replacement: object, flags: int = 0) -> None:
    _RULES.append((re.compile(pattern, flags), replacement))


# Order matters: specific patterns (money, dates, times) before generic numbers and symbols.
_sub(r"(\d)\s*[–—]\s*(\d)", r"\1 to \2")  # an en dash between numbers is a range
_sub(r"~\s?(?=[$£€¥₹]?\d)", " about ")
_sub(r"(?<![\d-])\(?(\d{3})\)?[ -](\d{3})-(\d{4})(?![\d-])", _phone)
_sub(
    r"(?P<sign>-)?(?P<sym>[$£€¥₹])\s?(?P<whole>" + _INT + r")?(?:\.(?P<fraction>\d+))?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|mn|[kKmMbBtT])\b)?",
    lambda m: _currency(m) if m.group("whole") or m.group("fraction") else m.group(0),
)
_sub(r"(?P<number>" + _NUMBER + r")\s?¢", lambda m: f" {_words(m.group('number'))} cents ")
_sub(r"(?P<number>-?" + _NUMBER + r")\s?(?P<code>USD|EUR|GBP|JPY|INR)\b", _currency_code)
_sub(r"(?P<number>-?" + _NUMBER + r")\s?%", lambda m: f" {_words(m.group('number'))} percent ")
_sub(r"(?P<number>-?" + _NUMBER + r")\s?°\s?(?P<scale>[CFK])?\b", _temperature)
_sub(r"(?<![\w.])(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\d)", _iso_date)
_sub(r"(?<![\w/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4}|\d{2})(?![\w/])", _slash_date)
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
_sub(r"(?<![\w.])'?(?P<digits>(?:1[1-9]|20)\d0|\d0)s\b", _decade)
_sub(r"(?<![\w.])(?P<number>" + _NUMBER + r")\s?(?P<unit>" + _UNIT_PATTERN + r")(?![\w/])", _unit)
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
_sub(r"(?<=\d)-(?=\d)", " to ")
_sub(r"(?<=[A-Za-z])-(?=\d)", " ")  # "COVID-19" is "COVID nineteen", not "minus nineteen"
_sub(r"(?:(?<=^)|(?<=[\s(]))-?(?:" + _NUMBER + r")|(?:" + _NUMBER + r")|\.\d+", _plain_number)


def _expand_abbreviations(text: str) -> str:
    for dotted, said in DOTTED.items():
        text = re.sub(
            r"(?<![\w.])" + re.escape(dotted) + r"(?![\w])",
            lambda m, said=said: _abbreviation(said, m),
            text,
            flags=re.IGNORECASE,
        )
    for word, said in BEFORE_NUMBER.items():
        if word in MONTH_ABBREVIATIONS:
            continue  # months are read together with their day
        text = re.sub(rf"\b{re.escape(word)}\.\s*(?=\d)", f"{said} ", text)
    for word, said in OTHERS.items():
        text = re.sub(rf"\b{re.escape(word)}\.(?!\w)", lambda m, said=said: _abbreviation(said, m), text)
    text = re.sub(r"\bvs\b", "versus", text)
    previous = None
    while previous != text:  # titles look at their neighbours, so expand one at a time
        previous = text
        text = _TITLE_RE.sub(_title, text, count=1)
    # Initialisms and initials: "U.S.A." -> "USA", "J. R. R. Tolkien" -> "J R R Tolkien".
    text = re.sub(
        r"(?<![\w.])((?:[A-Za-z]\.){2,})",
        lambda m: _abbreviation(m.group(1).replace(".", "").upper(), m),
        text,
    )
    return re.sub(r"(?<![\w.])([A-HJ-Z])\.(?=\s+[A-Z])", r"\1", text)


def normalize_text(text: str) -> str:
    """Spell out numbers, money, dates, times, units, symbols, abbreviations, URLs and e-mails."""
    text = _unicode(text)
    text = replace_urls(text)
    text = _expand_abbreviations(text)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    for symbol, said in _SYMBOLS.items():
        text = text.replace(symbol, said)
    text = re.sub(r"\s[-–—]+\s|—|–|--+", ", ", text)  # dashes used as punctuation are pauses
    text = re.sub(r"\.{4,}", "...", text)
    text = "".join(ch if ch.isalpha() or ch.isspace() or ch in _KEEP or _is_mark(ch) else " " for ch in text)
    return _cleanup(text)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def has_speakable(text: str) -> bool:
    """Whether normalized `text` still has something to say (a letter in any script)."""
    return any(ch.isalpha() for ch in text)
