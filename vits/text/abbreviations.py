"""Abbreviation tables shared by sentence splitting and normalization.

Splitting needs to know which periods are not sentence ends; normalization needs the spoken
form. Keeping one table means the two can never disagree about what counts as an abbreviation.
"""

from __future__ import annotations

import functools
import re

# Titles stand before a name, so a period after them never ends a sentence.
TITLES: dict[str, str] = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Dr": "Doctor",
    "Prof": "Professor",
    "St": "Saint",
    "Mt": "Mount",
    "Gen": "General",
    "Capt": "Captain",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Col": "Colonel",
    "Rev": "Reverend",
    "Hon": "Honorable",
    "Gov": "Governor",
    "Sen": "Senator",
    "Rep": "Representative",
    "Pres": "President",
    "Fr": "Father",
}

# Other abbreviations; one of these may also end a sentence ("... and so on, etc. Then").
OTHERS: dict[str, str] = {
    "Jr": "Junior",
    "Sr": "Senior",
    "etc": "et cetera",
    "vs": "versus",
    "approx": "approximately",
    "Inc": "Incorporated",
    "Ltd": "Limited",
    "Corp": "Corporation",
    "Co": "Company",
    "Ave": "Avenue",
    "Blvd": "Boulevard",
    "Rd": "Road",
    "Dept": "Department",
    "Univ": "University",
    "Fig": "Figure",
    "Vol": "Volume",
    "Ch": "Chapter",
    "Ph.D": "PhD",
}

# Dotted abbreviations read as words; matched case-insensitively, checked before initials.
DOTTED: dict[str, str] = {
    "e.g.": "for example",
    "i.e.": "that is",
    "cf.": "compare",
    "a.m.": "AM",
    "p.m.": "PM",
}

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
MONTH_ABBREVIATIONS: dict[str, str] = {
    "Jan": "January",
    "Feb": "February",
    "Mar": "March",
    "Apr": "April",
    "Jun": "June",
    "Jul": "July",
    "Aug": "August",
    "Sep": "September",
    "Sept": "September",
    "Oct": "October",
    "Nov": "November",
    "Dec": "December",
}

# Abbreviations that only count as such before a number ("No. 5", "Jan. 5", "p. 12").
BEFORE_NUMBER: dict[str, str] = {"No": "number", "Nos": "numbers", "pp": "pages", "p": "page"}
BEFORE_NUMBER.update(MONTH_ABBREVIATIONS)


def reads_as_street(word: str, before: str, after: str, *, at_text_start: bool) -> bool:
    """Whether "St."/"Dr." is Street/Drive (after a street name) rather than Saint/Doctor.

    `before` and `after` are the text around the abbreviation; `at_text_start` says whether
    `before` reaches back to the start of the text.
    """
    if word not in ("St", "Dr"):
        return False
    words = before.split()
    if not words:
        return False
    previous = words[-1].lstrip("\"'(")
    if previous[:1].isdigit():
        return True  # "5th St.", "221B Baker St." has a name in between but "42 St." does not
    if not previous[:1].isupper():
        return False  # "met Dr. Smith", "on St. Patrick's Day"
    starts_sentence = (len(words) == 1 and at_text_start) or (len(words) > 1 and words[-2][-1:] in ".!?")
    # "Visit St. Louis" or "Hello Dr. Smith": a capital that only starts the sentence is no street name.
    return not (starts_sentence and after.lstrip()[:1].isupper())


def _title(match: re.Match[str]) -> str:
    word = match.group("word")
    word = next(title for title in TITLES if title.upper() == word.upper())
    # Only a short window is looked at, so long texts stay linear.
    start = max(0, match.start() - 40)
    before = match.string[start : match.start()]
    after = match.string[match.end() : match.end() + 40]
    if reads_as_street(word, before, after, at_text_start=start == 0):
        said = "Street" if word == "St" else "Drive"
    else:
        said = TITLES[word]
    return said + ("." if not after.strip(" \"')") else "")


def _abbreviation(expansion: str, match: re.Match[str]) -> str:
    # Keep the period when the abbreviation ends the text: it was also the sentence's full stop.
    at_end = not match.string[match.end() :].strip(" \"')")
    return expansion + ("." if at_end else "")


# Titles as written, and in all-caps text ("DR. SMITH"); mixed case like "dR." is no title.
_TITLE_RE = re.compile(r"(?<![\w.])(?P<word>" + "|".join([*TITLES, *(t.upper() for t in TITLES)]) + r")\.")


_BARE_TITLES = ("Mr", "Mrs", "Ms", "Dr", "Prof", "Mt", "Capt", "Sgt", "Lt")
_BARE_TITLE_RE = re.compile(r"\b(" + "|".join(_BARE_TITLES) + r")(?= [A-Z][a-z])")


def expand_abbreviations(text: str) -> str:
    """Spell out titles, dotted abbreviations, initialisms and initials."""
    for dotted, said in DOTTED.items():
        text = re.sub(
            r"(?<![\w.])" + re.escape(dotted) + r"?(?![\w])",  # the last dot is often left out: "e.g"
            functools.partial(_abbreviation, said),
            text,
            flags=re.IGNORECASE,
        )
    for word, said in BEFORE_NUMBER.items():
        if word in MONTH_ABBREVIATIONS:
            continue  # months are read together with their day
        text = re.sub(rf"\b{re.escape(word)}\.\s*(?=\d)", f"{said} ", text)
    for word, said in OTHERS.items():
        text = re.sub(rf"\b{re.escape(word)}\.(?!\w)", functools.partial(_abbreviation, said), text)
    text = re.sub(r"\bvs\b", "versus", text)
    text = re.sub(r"\b([A-G])#(?!\w)", r"\1 sharp", text)  # "C#", "F#": not a number sign
    # British style writes titles without a period; only before a capitalized name are they titles.
    text = _BARE_TITLE_RE.sub(lambda m: TITLES[m.group(1)], text)
    text = re.sub(r"(?<=[A-Za-z] )Jr\b(?!\.)|(?<=[A-Za-z], )Jr\b(?!\.)", "Junior", text)
    text = _TITLE_RE.sub(_title, text)
    # Initialisms and initials: "U.S.A." -> "USA", "J. R. R. Tolkien" -> "J R R Tolkien".
    text = re.sub(
        r"(?<![\w.])((?:[A-Za-z]\.){2,}|(?:[A-Z]\.)+[A-Z](?![\w.]))",  # "U.S.A.", also "U.S" missing its dot
        lambda m: _abbreviation(m.group(1).replace(".", "").upper(), m),
        text,
    )
    return re.sub(r"(?<![\w.])([A-HJ-Z])\.(?=\s+[A-Z])", r"\1", text)
