"""English text normalization: turn digits, symbols and abbreviations into the words a reader says.

eSpeak alone reads "$3.50" as "dollar three point five zero" and "12/05/2024" with slashes, so
everything eSpeak would read badly is spelled out here, in this order: canonical characters,
URLs and e-mail addresses, abbreviations, numbers (numeric.py), symbols, then tidy punctuation.
The output keeps only letters, marks, spaces and the punctuation the voices know.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata

from .abbreviations import expand_abbreviations
from .numeric import expand_numbers
from .urls import replace_urls

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

_EMOTICON = re.compile(r"(?<!\S)(?:[:;=][-'^]?[()\[\]DPpOo/\\|*3]+|<3+|\^_*\^|[xX]D)(?!\S)")
SPOKEN_SYMBOLS = frozenset(_SYMBOLS)
_KEEP = set(".,!?;:'\"()-")

_MAX_PASSES = 6


def _cleanup(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,!?;:)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\(\)", " ", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)  # ", ," left where symbols were dropped
    text = re.sub(r"([!?])\1+", r"\1", text)
    text = re.sub(r"(?<=\w) -(?=\w)", "-", text)  # "a 2-year-old": the number was padded with spaces
    text = re.sub(
        r"([,;:])(?=[^\W\d_])", r"\1 ", text
    )  # "one,two" -> "one, two"  # "Hello!!!" sounds no different from "Hello!"
    text = re.sub(r"^[\s,;:.-]+", "", text)  # also list bullets: "- Item one"
    text = re.sub(r"\s+", " ", text)
    return text.strip()


# Fraction characters, read before NFKC turns "2½" into the unreadable "21⁄2". (after a number, alone)
_VULGAR_FRACTIONS = {
    "½": ("and a half", "one half"),
    "¼": ("and a quarter", "one quarter"),
    "¾": ("and three quarters", "three quarters"),
    "⅓": ("and a third", "one third"),
    "⅔": ("and two thirds", "two thirds"),
    "⅛": ("and an eighth", "one eighth"),
}
_VULGAR_RE = re.compile(r"(\d?)\s?([" + "".join(_VULGAR_FRACTIONS) + "])")


def _vulgar_fraction(match: re.Match[str]) -> str:
    after_number, alone = _VULGAR_FRACTIONS[match.group(2)]
    return f"{match.group(1)} {after_number} " if match.group(1) else f" {alone} "


def _unicode(text: str) -> str:
    """Canonical characters: other scripts' digits, full-width forms, ligatures, typographic marks."""
    if "&" in text:
        text = html.unescape(text)  # text pasted from web pages: "Tom &amp; Jerry", "&nbsp;"
    text = _VULGAR_RE.sub(_vulgar_fraction, text)
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)
    text = text.replace("²", " squared ").replace("³", " cubed ")
    text = re.sub(r"[™®]", " ", text)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_PUNCTUATION)
    # Format characters (zero-width joiners, BOM, soft hyphens, bidi marks) are invisible noise.
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_text(text: str) -> str:
    """Spell out numbers, money, dates, times, units, symbols, abbreviations, URLs and e-mails.

    Idempotent: the pass is repeated until nothing changes, because removing a symbol can expose a
    new pattern (in "x$St." the "St." only stands alone once the "$" is gone).
    """
    for _ in range(_MAX_PASSES):
        normalized = _normalize_once(text)
        if normalized == text:
            break
        text = normalized
    return text


def _normalize_once(text: str) -> str:
    text = _unicode(text)
    text = replace_urls(text)
    text = expand_abbreviations(text)
    text = _EMOTICON.sub(" ", text)  # before numbers and symbols: "<3" is a heart, not "less than three"
    text = expand_numbers(text)
    # A period inside a word is read like eSpeak reads it ("Node.js" -> "Node dot js"); before a
    # capital it is a missing space after a full stop ("late.Then").
    text = re.sub(r"(?<=[^\W\d_])\.(?=[^\W\d_])", lambda m: ". " if m.string[m.end()].isupper() else " dot ", text)
    for symbol, said in _SYMBOLS.items():
        text = text.replace(symbol, said)
    text = re.sub(r"\s[-–—]+\s|—|–|--+", ", ", text)  # dashes used as punctuation are pauses
    text = re.sub(r"\.{4,}", "...", text)
    return _cleanup(_keep_speakable(text))


@functools.lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def _keep_speakable(text: str) -> str:
    # An English voice reads other alphabets letter by letter ("Chinese letter, Chinese letter"),
    # so only Latin letters (accented ones included), the voice's punctuation and spaces stay.
    kept: list[str] = []
    for ch in text:
        if ch.isalpha():
            kept.append(ch if _is_latin(ch) else " ")
        elif unicodedata.category(ch).startswith("M"):
            kept.append(ch if kept and kept[-1].isalpha() else "")  # accents stay with their letter
        else:
            kept.append(ch if ch.isspace() or ch in _KEEP else " ")
    return "".join(kept)


def has_speakable(text: str) -> bool:
    """Whether normalized `text` still has something to say (a letter)."""
    return any(ch.isalpha() for ch in text)
