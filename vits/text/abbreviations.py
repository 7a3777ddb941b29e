"""Abbreviation tables shared by sentence splitting and normalization.

Splitting needs to know which periods are not sentence ends; normalization needs the spoken
form. Keeping one table means the two can never disagree about what counts as an abbreviation.
"""

from __future__ import annotations

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
