"""At one thread per agent a sentence has one audio, wherever it stands in a job: the sentence
cache (keyed by voice, params and sentence) and a redelivery that mixes cached and fresh sentences
rely on it, and bench/chaos.py checks every WAV sample for sample against a fresh synthesis.

A first chunk decoded before the flow has run over the whole sentence (vits `first_chunk_early`)
differs by one 16-bit step in a few hundred samples, so the agent must not ask for it: this test
caught that in a chaos run (8 of 60 WAVs off by one step).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import pytest

from synthesis_agent.pipeline import run_job
from synthesis_agent.voice import VoiceLike, VoicePool, load_vits_voice
from tts_contracts import PreviewEvent, defaults

from .test_chunked_steps import CHUNKED
from .test_pipeline import DictCache, message

pytestmark = [pytest.mark.timeout(300)]

# About 7 s of speech: long enough to be previewed when it comes first (5 s by default).
LONG = "The history of the city began with a small settlement on the river, where traders met every spring."


@pytest.fixture(scope="module")
def one_thread_voice() -> Iterator[VoiceLike]:
    import torch

    previous = torch.get_num_threads()
    yield VoicePool(functools.partial(load_vits_voice, threads=1), defaults.DEFAULT_VOICE).get(None)
    torch.set_num_threads(previous)


def test_a_sentence_previewed_first_has_the_audio_it_has_later_in_a_job(one_thread_voice: VoiceLike) -> None:
    class OneVoice:
        def get(self, voice_id: str | None) -> VoiceLike:
            return one_thread_voice

    settings = dataclasses.replace(CHUNKED, chunk_seconds=1.0)
    assert settings.preview_min_seconds > 0

    def cached_audio(text: str) -> tuple[bytes, bool]:
        cache = DictCache()
        events, outcome = run_job(message(text, seed=3), voices=OneVoice(), cache=cache, settings=settings)  # type: ignore[arg-type]
        assert outcome.status == "succeeded"
        previewed = any(isinstance(event, PreviewEvent) for event in events)
        [entry] = [audio for audio in cache.data.values() if audio.duration_s > 5]
        return entry.pcm, previewed

    first, first_previewed = cached_audio(LONG)
    later, later_previewed = cached_audio(f"Short one. {LONG}")
    assert first_previewed and not later_previewed
    assert len(first) == len(later) > 2 * 22050 * 5
    assert first == later
