"""A run steps by chunk: it can stop mid-sentence and resume without recomputing a chunk."""

from __future__ import annotations

import dataclasses

import pytest

from synthesis_agent.config import AgentConfig
from synthesis_agent.outcomes import DEFAULT_CHUNK_SECONDS
from synthesis_agent.pipeline import JobRun, run_job
from tts_contracts import JobEvent, SegmentEvent

from .fakes import ChunkedFakeVoice, FakeVoice, FakeVoices
from .test_pipeline import SETTINGS, DictCache, message

# Fake sentences last len * 0.01 s: at 0.1 s per chunk this one of 95 characters has 10 chunks.
LONG_SENTENCE = "This sentence is a long one that runs for about one second of fake audio, ok, yes, sure, right."
CHUNKED = dataclasses.replace(SETTINGS, chunk_seconds=0.1)


def pcm_of(events: list[JobEvent]) -> bytes:
    """The segments' audio, each (attempt, seq) once: the events topic delivers at least once (the
    embedded broker was seen delivering a message two or three times), and the gateway keeps the
    first delivery of an event the same way."""
    seen: set[tuple[int, int]] = set()
    pcm = []
    for event in events:
        if isinstance(event, SegmentEvent) and (event.attempt, event.seq) not in seen:
            seen.add((event.attempt, event.seq))
            pcm.append(event.pcm)
    return b"".join(pcm)


def new_run(text: str, voice: FakeVoice, cache: DictCache, *, queue: str = "long") -> JobRun:
    return JobRun(
        message(text, length_class=queue), queue=queue, redelivery_count=0, voices=FakeVoices(voice), cache=cache,
        settings=CHUNKED,
    )  # fmt: skip


def test_a_run_pauses_mid_sentence_and_resumes_with_identical_audio() -> None:
    assert len(LONG_SENTENCE) == 95
    voice, cache = ChunkedFakeVoice(), DictCache()
    text = f"{LONG_SENTENCE} Second one. {LONG_SENTENCE.replace('long', 'other')}"
    run = new_run(text, voice, cache)
    events = run.begin()
    reports = [run.step() for _ in range(3)]
    assert run.mid_sentence and run.next_index == 0
    assert all(report.source is None for report in reports)  # nothing delivered yet
    assert [event.type for report in reports for event in report.events] == ["preview"]  # the long first sentence
    assert cache.data == {}  # a sentence is cached only once all its chunks are done

    # Another job runs to its end on the same voice while the long one is paused mid-sentence.
    short_events, outcome = run_job(
        message("Quick.", job_id="job-2", length_class="short"), voices=FakeVoices(voice), cache=cache,
        settings=CHUNKED, queue="short",
    )  # fmt: skip
    assert outcome.status == "succeeded" and pcm_of(short_events) == voice.tone("Quick.").to_pcm16_bytes()

    while run.outcome is None:
        events += run.step().events
    sentences = voice.prepare(text)
    long_chunks = [call for call in voice.chunk_calls if call[0] != "Quick."]
    assert len(long_chunks) == len(set(long_chunks))  # no chunk computed twice
    assert [index for sentence, index in long_chunks if sentence == sentences[0]] == list(range(10))
    assert voice.calls == []  # every sentence went through the chunks
    uninterrupted, _ = run_job(message(text), voices=FakeVoices(FakeVoice()), cache=DictCache(), settings=SETTINGS)
    assert pcm_of(events) == pcm_of(uninterrupted)  # the same audio as whole-sentence synthesis
    completed = events[-1]
    assert completed.type == "completed" and completed.sentence_count == 3 and completed.cached_sentences == 0
    assert len(cache.data) == 4  # three long sentences and the short one, each once


def test_sentence_counts_and_redelivery_are_per_sentence() -> None:
    voice, cache = ChunkedFakeVoice(), DictCache()
    text = f"{LONG_SENTENCE} Two. Three."
    run = new_run(text, voice, cache)
    run.begin()
    sources = []
    while run.outcome is None:
        sources.append(run.step().source)
    assert sources.count("synthesized") == 3 and sources.count(None) == 9  # 10 chunks, the last delivers
    calls = len(voice.chunk_calls)
    replay, outcome = run_job(
        message(text), voices=FakeVoices(voice), cache=cache, settings=CHUNKED, redelivery_count=1
    )
    assert outcome.status == "succeeded" and replay[-1].cached_sentences == 3
    assert len(voice.chunk_calls) == calls  # finished sentences replay from the cache


def test_chunk_seconds_zero_synthesizes_whole_sentences() -> None:
    voice = ChunkedFakeVoice()
    settings = dataclasses.replace(SETTINGS, chunk_seconds=0.0)
    events, _ = run_job(message(LONG_SENTENCE), voices=FakeVoices(voice), cache=DictCache(), settings=settings)
    assert voice.calls == [LONG_SENTENCE] and voice.chunk_calls == []
    assert pcm_of(events) == voice.tone(LONG_SENTENCE).to_pcm16_bytes()


def test_a_failing_chunk_is_a_synthesis_error() -> None:
    voice = ChunkedFakeVoice(fail_on=("boom",))
    _, outcome = run_job(message("Fine. A boom here."), voices=FakeVoices(voice), cache=DictCache(), settings=CHUNKED)
    assert outcome.status == "retry" and outcome.reason == "synthesis_error"


def test_chunk_size_and_device_are_configured_from_the_environment() -> None:
    from vits.streaming import DEFAULT_CHUNK_SECONDS as VITS_DEFAULT

    assert DEFAULT_CHUNK_SECONDS == VITS_DEFAULT
    default = AgentConfig.from_env({})
    assert default.chunk_seconds == VITS_DEFAULT and default.device == "cpu"
    config = AgentConfig.from_env({"TTS_CHUNK_SECONDS": "0.5", "TTS_DEVICE": "cuda:1"})
    assert config.chunk_seconds == 0.5 and config.device == "cuda:1"
    assert AgentConfig.from_env({"TTS_DEVICE": "cuda"}, device="cpu").device == "cpu"  # --device wins


def test_device_goes_from_the_command_line_to_voice_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import vits
    from synthesis_agent.__main__ import parse_args
    from synthesis_agent.voice import load_vits_voice

    assert parse_args(["--device", "cuda:1"]).device == "cuda:1"
    assert parse_args([]).device is None  # then TTS_DEVICE, then cpu
    seen: dict[str, object] = {}

    def fake_load(cls: type, voice_id: str | None = None, **options: object) -> str:
        seen.update(options, voice_id=voice_id)
        return "voice"

    monkeypatch.setattr(vits.Voice, "load", classmethod(fake_load))
    assert load_vits_voice("v", device="cuda:1", threads=2, row_engine="mkl", conv_engine="onednn") == "voice"
    assert seen["device"] == "cuda:1" and seen["voice_id"] == "v" and seen["threads"] == 2
    assert seen["row_engine"] == "mkl" and seen["conv_engine"] == "onednn"


def test_a_real_voice_loads_on_the_cpu_and_rejects_a_bad_device() -> None:
    import torch

    from synthesis_agent.voice import load_vits_voice

    voice = load_vits_voice(None, device="cpu")
    assert voice.device == torch.device("cpu")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="device"):
        load_vits_voice(None, device="not-a-device")


def test_agent_threads_go_to_voice_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """TTS_AGENT_THREADS reaches vits, which decides how to use the cores (vits/parallel.py)."""
    import torch

    import synthesis_agent.__main__ as agent_main

    seen: dict[str, object] = {}

    def refusing_loader(voice_id: str | None, **options: object) -> object:
        seen.update(options)
        raise RuntimeError("no voice in this test")

    monkeypatch.setattr(agent_main, "load_vits_voice", refusing_loader)
    monkeypatch.setenv("TTS_AGENT_THREADS", "2")
    monkeypatch.setenv("TTS_VITS_ROW_ENGINE", "mkl")
    monkeypatch.setenv("TTS_VITS_CONV_ENGINE", "onednn")
    previous = torch.get_num_threads()
    try:
        assert agent_main.main(["--classes", "short"]) == 1  # the voice did not load: no start
    finally:
        torch.set_num_threads(previous)
    assert seen["threads"] == 2 and seen["row_engine"] == "mkl" and seen["conv_engine"] == "onednn"
