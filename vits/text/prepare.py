"""Validate raw user text and turn it into normalized sentences ready to phonemize."""

from __future__ import annotations

import unicodedata

from ..errors import EmptyTextError, InvalidTextError, UnspeakableTextError
from .normalize import SPOKEN_SYMBOLS, has_speakable, normalize_text
from .sentences import cut_long, split_sentences
from .urls import EMAIL, URL

MAX_WORD_CHARS = 100
_ALLOWED_CONTROLS = set("\t\n\r\f\v\x85")  # whitespace, including the old "next line" break


def validate_text(text: str) -> None:
    """Raise a `VitsInputError` (field "text") that tells the user what to fix, or return."""
    if not isinstance(text, str):
        raise InvalidTextError(f"The text must be a string, not {type(text).__name__}.", field="text")
    if not text.strip():
        raise EmptyTextError("The text is empty. Enter the words you want to hear.", field="text")
    for position, ch in enumerate(text):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs":
            raise InvalidTextError(
                f"The text contains an invisible control character (U+{ord(ch):04X}) at position {position}. "
                "Remove it (it often comes from copying out of another program) and try again.",
                field="text",
            )
    # URLs and addresses are long but readable; normalization spells them out.
    for word in URL.sub(" ", EMAIL.sub(" ", text)).split():
        if len(word) > MAX_WORD_CHARS:
            raise InvalidTextError(
                f"The text contains a 'word' of {len(word)} characters without a space "
                f"(starting with {word[:20]!r}). Words longer than {MAX_WORD_CHARS} characters cannot be "
                "read aloud; add spaces or remove it.",
                field="text",
            )


def prepare_sentences(text: str, *, max_chars: int = 250) -> list[str]:
    """Validate `text`, split it into sentences and normalize each; never returns an empty list."""
    validate_text(text)
    sentences: list[str] = []
    for raw in split_sentences(text, max_chars=max_chars):
        if not any(ch.isalnum() or ch in SPOKEN_SYMBOLS for ch in unicodedata.normalize("NFKC", raw)):
            continue  # cheap exit for "***" or emoji lines, which normalization would erase anyway
        normalized = normalize_text(raw)
        if not has_speakable(normalized):
            continue  # a line of emoji or "***" between paragraphs: skip it, keep the rest
        # Spelling out numbers makes text longer: cut again so no piece exceeds max_chars.
        sentences.extend(cut_long(normalized, max_chars))
    if not sentences:
        raise UnspeakableTextError(
            "The text has nothing that can be read aloud: it contains only symbols, emoji, punctuation "
            "or letters of alphabets other than the Latin one, which this English voice cannot read. "
            "Add some English words or numbers.",
            field="text",
        )
    return sentences
