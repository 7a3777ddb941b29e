"""PyTorch VITS text-to-speech: voice loading, synthesis and the text front end.

`Voice` (and with it torch) is imported on first use, so `list_voices` / `find_voice` stay
cheap for callers such as the web gateway that never synthesize.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audio import Audio
from .errors import (
    EmptyTextError,
    InvalidTextError,
    ParameterError,
    UnknownSpeakerError,
    UnspeakableTextError,
    VitsError,
    VitsInputError,
    VoiceLoadError,
    VoiceNotFoundError,
)
from .params import SynthesisParams
from .voices import DEFAULT_VOICE_ID, VoiceInfo, find_voice, list_voices

if TYPE_CHECKING:
    from .voice import Voice

__all__ = [
    "DEFAULT_VOICE_ID",
    "Audio",
    "EmptyTextError",
    "InvalidTextError",
    "ParameterError",
    "SynthesisParams",
    "UnknownSpeakerError",
    "UnspeakableTextError",
    "VitsError",
    "VitsInputError",
    "Voice",
    "VoiceInfo",
    "VoiceLoadError",
    "VoiceNotFoundError",
    "find_voice",
    "list_voices",
]


def __getattr__(name: str) -> Any:
    if name == "Voice":
        from .voice import Voice

        return Voice
    raise AttributeError(f"module 'vits' has no attribute {name!r}")
