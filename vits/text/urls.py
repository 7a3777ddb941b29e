"""Read URLs, e-mail addresses and bare domains the way a person would say them."""

from __future__ import annotations

import re
from collections.abc import Callable

URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'“”]+", re.IGNORECASE)
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_TLDS = "com|org|net|edu|gov|mil|int|io|ai|dev|app|co|uk|us|ca|de|fr|eu|info|biz|me|tv"
# The look-behinds make matching start only at the beginning of a token, which keeps it linear.
DOMAIN = re.compile(rf"(?<![\w.-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?!\.\w)", re.IGNORECASE)
_TRAILING = ".,!?;:)]}'\""


def _say_host(host: str) -> str:
    return " dot ".join(part for part in host.split(".") if part)


def _say_segment(segment: str) -> str:
    # Separators inside a path segment are noise to a listener; dots are not ("index dot html").
    return _say_host(re.sub(r"[-_~+=%]+", " ", segment))


def say_url(url: str) -> str:
    """`https://www.example.com/docs/intro` -> "example dot com slash docs slash intro"."""
    rest = re.sub(r"^(?:[a-z]+://)?(?:www\.)?", "", url, flags=re.IGNORECASE)
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]  # query strings are unreadable
    host, _, path = rest.partition("/")
    host = host.split("@")[-1].split(":")[0]  # credentials and ports are not read out
    words = [_say_host(host)]
    words += [_say_segment(segment) for segment in path.split("/") if segment]
    return " slash ".join(word for word in words if word)


def say_email(address: str) -> str:
    """`jane.doe@example.com` -> "jane dot doe at example dot com"."""
    local, _, domain = address.partition("@")
    local = local.replace(".", " dot ").replace("_", " underscore ").replace("-", " dash ")
    local = local.replace("+", " plus ")
    return f"{' '.join(local.split())} at {_say_host(domain)}"


def _keep_trailing(match: re.Match[str], say: Callable[[str], str]) -> str:
    # Punctuation right after a URL belongs to the sentence, not to the address.
    text = match.group(0)
    stripped = text.rstrip(_TRAILING)
    return f" {say(stripped)} {text[len(stripped) :]}"


def replace_urls(text: str) -> str:
    """Replace every URL, e-mail address and bare domain in `text` with its spoken form."""
    text = EMAIL.sub(lambda m: f" {say_email(m.group(0))} ", text)
    text = URL.sub(lambda m: _keep_trailing(m, say_url), text)
    return DOMAIN.sub(lambda m: f" {say_url(m.group(0))} ", text)
