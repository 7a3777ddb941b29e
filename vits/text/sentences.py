"""Split raw text into sentences, and cut sentences that are too long to synthesize in one go.

Splitting runs on the raw text (before normalization) because the periods that matter are still
there: "Dr. Smith" and "3.14" must not end a sentence, "It is late. Go home." must.
"""

from __future__ import annotations

import re

from .abbreviations import BEFORE_NUMBER, DOTTED, OTHERS, TITLES, reads_as_street

_CLOSERS = "\"'”’»)]}"
# A terminator run, any closing quotes/brackets, then the whitespace after it.
_BOUNDARY = re.compile(r"(?P<end>[.!?…]+)(?P<close>[" + re.escape(_CLOSERS) + r"]*)(?P<space>\s+)")
_WORD_BEFORE = re.compile(r"(\S+)$")
# Every Unicode line and paragraph break counts as a newline; a paragraph separator as a blank line.
_LINE_BREAKS = str.maketrans({"\r": "\n", "\v": "\n", "\f": "\n\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"})
_PARAGRAPH = re.compile(r"\n\s*\n")
_NEVER_SPLIT_AFTER = {name.lower() for name in TITLES} | {"e.g", "i.e", "cf", "vs", "approx"}
_SPLIT_IF_CAPITAL = {name.lower() for name in OTHERS} | {"a.m", "p.m"}
_DOTTED_STEMS = {key.rstrip(".").lower() for key in DOTTED}
_CONTEXT = 40
_BEFORE_NAMES = {"by", "and", "with", "of", "to", "from", "for", "dear", "said", "says", "or", "as", "like", "&"}
_INITIALS = re.compile(r"^(?:[A-Za-z]\.)*[A-Za-z]$")

# Boundaries to cut an overlong sentence at, best first. Each cut keeps the mark on the left.
_CUT_MARKS = (
    re.compile(r"[;:](?=\s)"),
    re.compile(r",(?=\s)"),
    re.compile(r"\s[—–-]\s|—"),
    re.compile(r"\s"),
)


def _starts_upper(text: str) -> bool:
    for ch in text:
        if ch.isalnum():
            return ch.isupper() or ch.isdigit()
        if ch not in "\"'“‘(«[¿¡":
            return False
    return False


def _is_short_caps(after: str) -> bool:
    # "Pennsylvania Ave. NW": a short all-caps word after an abbreviation continues the address.
    words = after.split(maxsplit=1)
    next_word = words[0].strip(",;:") if words else ""
    return next_word.isupper() and 2 <= len(next_word) <= 3


def _is_boundary(before: str, end: str, after: str, *, at_text_start: bool = False) -> bool:
    """Decide whether the terminator `end`, preceded by `before`, ends a sentence."""
    if not after:
        return True
    next_upper = _starts_upper(after)
    if "!" in end or "?" in end:
        return next_upper  # "'Really?' she asked." goes on in lowercase
    if "…" in end or end.startswith(".."):
        return next_upper  # "Wait... what?" is one sentence
    if before.strip().isdigit() and len(before.strip()) < 4:
        return False  # a list marker ("1. Apples") when it is all there is before the period
    match = _WORD_BEFORE.search(before)
    word = match.group(1).lstrip("\"'“‘([«") if match else ""
    stem = word.lower()
    if reads_as_street(word, before[: len(before) - len(word)], after, at_text_start=at_text_start):
        return next_upper and not _is_short_caps(after)  # "on Main St. Then we left."
    if stem in _NEVER_SPLIT_AFTER or stem in _DOTTED_STEMS - {"a.m", "p.m"}:
        return False
    if word in BEFORE_NUMBER and after[:1].isdigit():
        return False  # "No. 5", "Jan. 5"
    if stem in _SPLIT_IF_CAPITAL:
        if after[:1].isdigit():
            return False  # "Fig. 4", "Vol. 2"
        return next_upper and not _is_short_caps(after)
    if _INITIALS.match(word) and word != "I":
        # "J. R. R. Tolkien", "U.S. Army"; but "vitamin C. Then" ends: a lone capital after an
        # ordinal lowercase word is a letter, not an initial (unless "by J. Smith" and the like).
        words = before.split()
        previous = words[-2] if len(words) > 1 else ""
        lone_letter = len(word) == 1 and previous.islower() and previous not in _BEFORE_NAMES
        return lone_letter and next_upper
    # A plain period: a new sentence unless the text obviously goes on in lowercase.
    return not (after[:1].islower())


def _split_paragraph(paragraph: str) -> list[str]:
    # A single newline inside a paragraph is hard wrapping unless the next line looks like a new start.
    lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
    blocks: list[str] = []
    for line in lines:
        if blocks and line[:1].islower():
            blocks[-1] += " " + line
        else:
            blocks.append(line)
    sentences: list[str] = []
    for block in blocks:
        start = 0
        for match in _BOUNDARY.finditer(block):
            # Decisions need only a little context; short windows keep long texts linear.
            window_start = max(start, match.start() - _CONTEXT)
            before = block[window_start : match.start()]
            after = block[match.end() : match.end() + _CONTEXT]
            if _is_boundary(before, match.group("end"), after, at_text_start=window_start == start):
                sentences.append(block[start : match.end("close")].strip())
                start = match.end()
        sentences.append(block[start:].strip())
    return [sentence for sentence in sentences if sentence]


def cut_long(sentence: str, max_chars: int) -> list[str]:
    """Cut `sentence` into pieces of at most `max_chars`, at the strongest clause boundary available."""
    pieces: list[str] = []
    rest = sentence.strip()
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = 0
        for mark in _CUT_MARKS:
            # Prefer a late boundary: a tiny first piece sounds worse than a weaker boundary.
            ends = [m.end() for m in mark.finditer(window) if max_chars // 3 <= m.end() <= max_chars]
            if ends:
                cut = ends[-1]
                break
        if not cut:
            ends = [m.end() for m in _CUT_MARKS[-1].finditer(window) if 0 < m.end() <= max_chars]
            cut = ends[-1] if ends else max_chars  # one giant word: cut it anyway
        head, rest = rest[:cut].strip(), rest[cut:].strip()
        if head:
            pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces


def split_sentences(text: str, *, max_chars: int = 250) -> list[str]:
    """Split raw text into sentences of at most `max_chars` characters each."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    result: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        for sentence in _split_paragraph(paragraph):
            result.extend(cut_long(sentence, max_chars))
    return result
