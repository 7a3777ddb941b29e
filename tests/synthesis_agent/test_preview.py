"""A long first sentence sends its first chunks as a `preview` before it is done, once per delivery."""

from __future__ import annotations

import dataclasses

import pytest

from synthesis_agent.config import AgentConfig, ConfigError
from synthesis_agent.outcomes import DEFAULT_PREVIEW_MIN_SECONDS
from synthesis_agent.pipeline import run_job
from tts_contracts import JobEvent, PreviewEvent, SegmentEvent, defaults

from .fakes import ChunkedFakeVoice, FakeVoices
from .test_chunked_steps import CHUNKED, LONG_SENTENCE
from .test_pipeline import DictCache, message


def previews(events: list[JobEvent]) -> list[PreviewEvent]:
    return [event for event in events if isinstance(event, PreviewEvent)]


def run(
    text: str, *, cache: DictCache | None = None, voice: ChunkedFakeVoice | None = None, **changes: object
) -> tuple[list[JobEvent], ChunkedFakeVoice]:
    params = {"length_scale": changes.pop("length_scale")} if "length_scale" in changes else {}
    settings = dataclasses.replace(CHUNKED, **changes)  # type: ignore[arg-type]
    voice = voice or ChunkedFakeVoice()
    events, outcome = run_job(
        message(text, **params), voices=FakeVoices(voice), cache=cache or DictCache(), settings=settings
    )
    assert outcome.status == "succeeded"
    return events, voice


def test_a_long_first_sentence_is_previewed_by_its_first_chunk_once() -> None:
    assert defaults.estimate_audio_seconds(chars=len(LONG_SENTENCE)) >= DEFAULT_PREVIEW_MIN_SECONDS
    events, voice = run(f"{LONG_SENTENCE} Second one.")
    [preview] = previews(events)
    first_segment = next(event for event in events if isinstance(event, SegmentEvent))
    assert [event.type for event in events][:3] == ["started", "preview", "segment"]
    assert preview.seq == 1 and preview.sentence == 0 and preview.sample_rate == first_segment.sample_rate
    # Exactly the first chunk of 10, and a prefix of the segment this delivery sends.
    assert 0 < len(preview.pcm) < len(first_segment.pcm) // 5
    assert first_segment.first_sentence == 0 and first_segment.pcm.startswith(preview.pcm)
    assert voice.chunk_calls[0] == (LONG_SENTENCE, 0)


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        (f"A short first one. {LONG_SENTENCE}", {}),  # only the first sentence is previewed
        (LONG_SENTENCE, {"preview_min_seconds": 0.0}),  # previews off
        (LONG_SENTENCE, {"chunk_seconds": 0.0}),  # whole sentences: nothing before the sentence is done
        (LONG_SENTENCE, {"length_scale": 0.5}),  # spoken twice as fast: under the minimum
    ],
)
def test_no_preview_where_it_would_win_nothing(text: str, changes: dict[str, object]) -> None:
    events, _ = run(text, **changes)
    assert previews(events) == []
    assert sum(isinstance(event, SegmentEvent) for event in events) >= 1


def test_a_first_sentence_replayed_from_the_cache_sends_no_preview() -> None:
    cache, voice = DictCache(), ChunkedFakeVoice()
    first, _ = run(LONG_SENTENCE, cache=cache, voice=voice)
    again, _ = run(LONG_SENTENCE, cache=cache, voice=voice)
    assert len(previews(first)) == 1 and previews(again) == []


def test_the_minimum_is_configured_from_the_environment() -> None:
    assert AgentConfig.from_env({}).preview_min_seconds == DEFAULT_PREVIEW_MIN_SECONDS
    assert AgentConfig.from_env({"TTS_PREVIEW_MIN_SECONDS": "0"}).preview_min_seconds == 0.0
    assert AgentConfig.from_env({"TTS_PREVIEW_MIN_SECONDS": "2.5"}).preview_min_seconds == 2.5
    with pytest.raises(ConfigError, match="TTS_PREVIEW_MIN_SECONDS"):
        AgentConfig.from_env({"TTS_PREVIEW_MIN_SECONDS": "-1"})
