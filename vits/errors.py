"""Exceptions raised by the `vits` package.

Every error a caller can provoke with its input derives from `VitsInputError` (a
`ValueError`), so services can map all of them to a 4xx response in one place.
"""

from __future__ import annotations


class VitsError(Exception):
    """Base class of every error raised on purpose by `vits`."""


class VitsInputError(VitsError, ValueError):
    """The caller's input cannot be synthesized; the message says what to change.

    `field` names the offending input (``"text"``, ``"length_scale"``, ``"speaker"``...).
    """

    def __init__(self, message: str, *, field: str = "text") -> None:
        super().__init__(message)
        self.field = field


class EmptyTextError(VitsInputError):
    """The text is empty or only whitespace."""


class UnspeakableTextError(VitsInputError):
    """The text has nothing that can be spoken (only emoji, symbols or punctuation)."""


class InvalidTextError(VitsInputError):
    """The text contains something that cannot be accepted (control characters, huge words)."""


class ParameterError(VitsInputError):
    """A synthesis parameter is out of its documented range."""


class UnknownSpeakerError(ParameterError):
    """The speaker id does not exist in this voice."""


class VoiceNotFoundError(VitsError, LookupError):
    """No voice with that id or path exists."""


class VoiceLoadError(VitsError):
    """A voice file exists but does not fit the model (names the tensor or setting)."""
