"""The start-up warm-up: one sentence through a job's own path, before the agent subscribes."""

from __future__ import annotations

import math

import pytest

from synthesis_agent.config import AgentConfig, ConfigError
from synthesis_agent.warmup import WARM_UP_TEXT, warm_up_voice

from .fakes import ChunkedFakeVoice, FakeVoice, FakeVoices


def test_the_warm_up_sentence_runs_chunk_by_chunk_at_the_agents_chunk_size() -> None:
    voice = ChunkedFakeVoice()
    elapsed = warm_up_voice(voice, chunk_seconds=0.1)
    fake_seconds = len(WARM_UP_TEXT) * voice.seconds_per_char
    expected_chunks = math.ceil(round(fake_seconds / 0.1, 6))
    assert voice.chunk_calls == [(WARM_UP_TEXT, index) for index in range(expected_chunks)]
    assert expected_chunks > 1  # several windows, not one
    assert elapsed >= 0.0


def test_a_voice_without_chunks_synthesizes_the_whole_sentence() -> None:
    voice = FakeVoice()
    warm_up_voice(voice, chunk_seconds=1.0)
    assert voice.calls == [WARM_UP_TEXT]


def test_chunk_seconds_zero_means_whole_sentences_here_too() -> None:
    voice = ChunkedFakeVoice()
    warm_up_voice(voice, chunk_seconds=0)
    assert voice.calls == [WARM_UP_TEXT] and voice.chunk_calls == []


def test_a_voice_that_cannot_speak_the_sentence_fails_the_warm_up() -> None:
    with pytest.raises(RuntimeError, match="fake synthesis failure"):
        warm_up_voice(ChunkedFakeVoice(fail_on=["warms"]), chunk_seconds=0.1)


def test_warm_up_is_on_by_default_and_can_be_turned_off() -> None:
    assert AgentConfig.from_env({}, agent_id="a").warm_up is True
    assert AgentConfig.from_env({"TTS_AGENT_WARM_UP": "0"}, agent_id="a").warm_up is False
    with pytest.raises(ConfigError, match="TTS_AGENT_WARM_UP"):
        AgentConfig.from_env({"TTS_AGENT_WARM_UP": "sometimes"}, agent_id="a")


class _ConnectRefused(RuntimeError):
    pass


@pytest.mark.parametrize(("setting", "warmed"), [("1", True), ("0", False)])
def test_the_agent_warms_its_voice_before_it_subscribes(
    monkeypatch: pytest.MonkeyPatch, setting: str, warmed: bool
) -> None:
    import synthesis_agent.__main__ as entry

    voice = ChunkedFakeVoice()
    seen_at_connect: list[list[str]] = []

    class RecordingAgent:
        """Stands in for the agent: records what the voice had synthesized when connect() came."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def connect(self) -> None:
            seen_at_connect.append([sentence for sentence, _ in voice.chunk_calls])
            raise _ConnectRefused("no broker in this test")

    monkeypatch.setattr(entry, "configure_logging", lambda level: None)  # keeps pytest's handlers
    monkeypatch.setattr(entry, "Agent", RecordingAgent)
    monkeypatch.setenv("TTS_AGENT_WARM_UP", setting)
    monkeypatch.setenv("TTS_CACHE_ENABLED", "0")
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name in ("TTS_DEDICATED_VOICES", "TTS_AGENT_VOICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TTS_DEFAULT_VOICE", voice.info.id)

    assert entry.main(["--metrics-port", "0"], voice_loader=FakeVoices(voice).loader) == 1  # connect refused
    assert len(seen_at_connect) == 1
    assert (WARM_UP_TEXT in seen_at_connect[0]) is warmed
