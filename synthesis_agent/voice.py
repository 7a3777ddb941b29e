"""What the agent needs from a voice, as a Protocol, and a pool of loaded voices.

The agent codes against these protocols, not against `vits` classes, so unit tests run with
a fake voice and the real `vits.Voice` fits without adapters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from vits.params import SynthesisParams

logger = logging.getLogger(__name__)


class VoiceInfoLike(Protocol):
    # Read-only: `vits.VoiceInfo` is a frozen dataclass and its checksum a property.
    @property
    def id(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def model_checksum(self) -> str: ...

    @property
    def num_speakers(self) -> int: ...


class AudioLike(Protocol):
    @property
    def sample_rate(self) -> int: ...

    @property
    def duration_s(self) -> float: ...

    def to_pcm16_bytes(self) -> bytes: ...


class ChunksLike(Protocol):
    """An iterator of one sentence's audio chunks (`vits.streaming.SentenceChunks`)."""

    def __next__(self) -> AudioLike: ...

    @property
    def done(self) -> bool:
        """No chunk is left: the next `next()` would raise StopIteration."""
        ...


class VoiceLike(Protocol):
    @property
    def info(self) -> VoiceInfoLike: ...

    def prepare(self, text: str) -> list[str]:
        """Normalized sentences; raises `vits.errors.VitsInputError` for text it cannot speak."""
        ...

    def synthesize_sentence(self, sentence: str, params: SynthesisParams | None = None) -> AudioLike:
        """Audio of one sentence `prepare()` produced, with `params` (None fields: voice defaults)."""
        ...

    # Optional (looked up with getattr): `sentence_chunks(sentence, params, chunk_seconds=...)`
    # returning a `ChunksLike` whose chunks joined equal `synthesize_sentence`.


VoiceLoader = Callable[[str | None], VoiceLike]


def load_vits_voice(
    voice_id: str | None,
    *,
    voices_dir: Path | None = None,
    compile: bool = False,
    device: str = "cpu",
    threads: int | None = None,
    row_engine: str = "auto",
    conv_engine: str = "auto",
) -> VoiceLike:
    """The production loader; imported lazily so the agent's modules load without torch.

    `threads` (TTS_AGENT_THREADS) is how many cores the voice may use; vits decides how (by
    default on the CPU: that many decoder windows of a sentence at once, vits/parallel.py).
    `row_engine` (TTS_VITS_ROW_ENGINE) names the library of the row products, or "auto";
    `conv_engine` (TTS_VITS_CONV_ENGINE) the decoder's residual convolutions' engine, or "auto".
    """
    from vits import Voice

    voice: Any = Voice.load(
        voice_id,
        voices_dir=voices_dir,
        compile=compile,
        device=device,
        threads=threads,
        row_engine=row_engine,  # type: ignore[arg-type]  # checked by AgentConfig and by Voice.load
        conv_engine=conv_engine,  # type: ignore[arg-type]  # likewise
    )
    return voice


class VoicePool:
    """Loads each voice once and keeps it; the default voice is loaded at start-up.

    Unknown voices raise the loader's error (`vits.errors.VoiceNotFoundError`), which the
    pipeline treats as a bad message. Load failures are not cached, so a voice installed
    later is found on the next job.
    """

    def __init__(self, loader: VoiceLoader, default_voice: str) -> None:
        self._loader = loader
        self.default_voice = default_voice
        self._voices: dict[str, VoiceLike] = {}
        self._lock = threading.Lock()

    def get(self, voice_id: str | None) -> VoiceLike:
        key = voice_id or self.default_voice
        with self._lock:
            voice = self._voices.get(key)
            if voice is None:
                voice = self._loader(key)
                self._voices[key] = voice
                # Remember it under its canonical id too: "" and the default name are one voice.
                self._voices.setdefault(voice.info.id, voice)
                logger.info("loaded voice %s (checksum %s)", voice.info.id, voice.info.model_checksum[:12])
            return voice
