"""PyTorch VITS text-to-speech: voice loading, synthesis and the text front end.

`Voice` (and with it torch) is imported on first use, so `list_voices` / `find_voice` stay
cheap for callers such as the web gateway that never synthesize.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if "torch" not in sys.modules:
    # OpenMP workers that spin-wait between operations are ruinous on shared or busy CPUs
    # (measured: RTF 3x worse on 2 cores with one other busy process); sleeping workers cost
    # only microseconds per operation. Must be set before torch loads its OpenMP runtime;
    # an explicit setting by the operator wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# oneDNN builds a primitive per convolution shape and keeps the last 1024. Every decoder
# window length has its own ~45 shapes, so an agent seeing many sentence lengths kept evicting
# and rebuilding them: at 2 threads the bench sentences took 1.64 s after the long text instead
# of 1.28 s warm (1.39 s with this capacity; peak RSS unchanged). Read when oneDNN creates its
# cache (the first convolution); an explicit setting by the operator wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")

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
