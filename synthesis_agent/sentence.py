"""One sentence being synthesized chunk by chunk: the state a preempted job keeps mid-sentence.

A voice that offers `sentence_chunks` (vits: windowed decoding whose chunks joined equal the
whole sentence) is advanced one chunk per call, so the worker can serve a more urgent job
between two chunks and come back to the same iterator: finished chunks are never decoded
again. A voice without it (or `chunk_seconds` 0) synthesizes the whole sentence in one call.

A sentence made with `parallel=False` decodes one window at a time on the calling thread (the
run computes following sentences beside it, ahead.py); `advance(spread=True)` lets vits spread
the rest of such a sentence over its worker threads once it runs alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .voice import AudioLike, ChunksLike, VoiceLike

if TYPE_CHECKING:
    from vits.params import SynthesisParams


class SentenceSynthesis:
    """Call `advance()` until `done`; then `pcm` is the sentence's PCM16 audio.

    Input errors (`vits.errors.VitsInputError`) are raised by the constructor, before any model
    work; model errors by `advance()`.
    """

    def __init__(
        self,
        voice: VoiceLike,
        sentence: str,
        params: SynthesisParams,
        *,
        chunk_seconds: float,
        clock: Callable[[], float],
        parallel: bool = True,
    ) -> None:
        self._voice = voice
        self._sentence = sentence
        self._params = params
        self._clock = clock
        self._parts: list[bytes] = []
        self.synthesis_s = 0.0
        self.chunks_done = 0
        self.done = False
        self._chunks: ChunksLike | None = None
        chunker = getattr(voice, "sentence_chunks", None)
        if chunk_seconds > 0 and chunker is not None:
            began = clock()
            try:
                if parallel:
                    self._chunks = chunker(sentence, params, chunk_seconds=chunk_seconds)
                else:  # computed beside other sentences (ahead.py)
                    self._chunks = chunker(sentence, params, chunk_seconds=chunk_seconds, parallel=False)
            finally:
                self.synthesis_s += clock() - began

    def advance(self, *, spread: bool = False) -> None:
        """Synthesize the next chunk (the whole sentence when the voice has no chunks).

        With `spread`, a voice with `next_chunks` decodes it over all of its worker threads.
        """
        if self.done:
            raise RuntimeError("advance() on a finished sentence")
        began = self._clock()
        try:
            audio: AudioLike | None
            if self._chunks is None:
                audio = self._voice.synthesize_sentence(self._sentence, self._params)
                self.done = True
            else:
                next_chunks = getattr(self._voice, "next_chunks", None) if spread else None
                audio = next(self._chunks, None) if next_chunks is None else next_chunks([self._chunks])[0]
                self.done = audio is None or self._chunks.done
            if audio is not None:
                self._parts.append(audio.to_pcm16_bytes())
                self.chunks_done += 1
        finally:
            self.synthesis_s += self._clock() - began

    @property
    def spread(self) -> bool:
        """Its windows are decoded over the voice's worker threads (see `advance`)."""
        return bool(getattr(self._chunks, "parallel", False))

    @property
    def pcm(self) -> bytes:
        return b"".join(self._parts)
