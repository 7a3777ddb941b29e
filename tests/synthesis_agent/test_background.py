"""Background steps: lower classes compute on a low-priority thread, so a short job admitted
mid-chunk runs at once instead of waiting for the chunk (synthesis_agent/background.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

import pytest

from synthesis_agent.background import BackgroundSteps, thread_nice
from synthesis_agent.config import AgentConfig, ConfigError
from synthesis_agent.logs import _agent, set_agent_id
from synthesis_agent.pipeline import run_job
from synthesis_agent.worker import Agent

from .conftest import Harness
from .fakes import ChunkedFakeVoice, FakeVoice, FakeVoices
from .test_chunked_steps import LONG_SENTENCE, pcm_of
from .test_pipeline import SETTINGS, DictCache, message

LONG_CHUNK_S = 2.0  # far longer than a short job takes, so the order below is unambiguous


def drain(steps: BackgroundSteps[str, int], timeout_s: float = 5.0) -> list[tuple[str, int]]:
    """Every result until the thread has stopped and nothing is left."""
    results: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout_s
    while steps.in_flight is not None:
        assert time.monotonic() < deadline, "the background thread did not stop"
        results += steps.collect(timeout_s=0.05)
    return results


def test_the_steps_run_on_a_thread_with_the_raised_nice_value() -> None:
    steps: BackgroundSteps[str, int] = BackgroundSteps(nice=7)
    try:
        steps.start("job", lambda: thread_nice(threading.get_native_id()), lambda result: True)
        assert steps.in_flight == "job"
        assert drain(steps) == [("job", 7)]
        assert steps.in_flight is None and steps.collect() == []
        assert thread_nice(threading.get_native_id()) == 0  # the caller keeps its priority
    finally:
        steps.close()


def test_a_job_steps_until_finished_and_results_come_in_order() -> None:
    counter = iter(range(1, 100))
    steps: BackgroundSteps[str, int] = BackgroundSteps(nice=19)
    try:
        steps.start("job", lambda: next(counter), lambda result: result == 4)
        assert drain(steps) == [("job", 1), ("job", 2), ("job", 3), ("job", 4)]
        assert next(counter) == 5  # no step after the finished one
    finally:
        steps.close()


def test_pause_stops_after_the_step_being_computed() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def step() -> int:
        calls.append(len(calls) + 1)
        started.set()
        assert release.wait(5)
        return calls[-1]

    steps: BackgroundSteps[str, int] = BackgroundSteps(nice=19)
    try:
        steps.start("job", step, lambda result: False)  # would run for ever
        assert started.wait(5)
        with pytest.raises(RuntimeError, match="already in flight"):
            steps.start("other", step, lambda result: True)
        steps.pause()
        assert steps.pausing
        release.set()
        assert drain(steps) == [("job", 1)]
        assert calls == [1]
    finally:
        steps.close()


def test_a_step_error_is_raised_in_the_caller_after_the_results_before_it() -> None:
    counter = iter(range(1, 100))

    def step() -> int:
        value = next(counter)
        if value == 2:
            raise ValueError("model error")
        return value

    steps: BackgroundSteps[str, int] = BackgroundSteps(nice=19)
    try:
        steps.start("job", step, lambda result: False)
        results: list[tuple[str, int]] = []
        with pytest.raises(ValueError, match="model error"):
            for _ in range(200):
                results += steps.collect(timeout_s=0.05)
        assert results == [("job", 1)]
        assert steps.in_flight is None  # settled: the next job may start
    finally:
        steps.close()


def test_the_steps_see_the_callers_log_context() -> None:
    set_agent_id("agent-ctx")
    steps: BackgroundSteps[str, str] = BackgroundSteps(nice=19)
    try:
        steps.start("job", _agent.get, lambda result: True)
        results: list[tuple[str, str]] = []
        while steps.in_flight is not None:
            results += steps.collect(timeout_s=0.05)
        assert results == [("job", "agent-ctx")]
    finally:
        steps.close()


def test_nice_value_is_checked() -> None:
    with pytest.raises(ValueError, match="nice"):
        BackgroundSteps(nice=0)
    assert AgentConfig.from_env({}, agent_id="a").background_nice == 19
    assert AgentConfig.from_env({"TTS_AGENT_BACKGROUND_NICE": "0"}, agent_id="a").background_nice == 0
    with pytest.raises(ConfigError, match="TTS_AGENT_BACKGROUND_NICE"):
        AgentConfig.from_env({"TTS_AGENT_BACKGROUND_NICE": "20"}, agent_id="a")


@dataclass
class SlowLongVoice(ChunkedFakeVoice):
    """Chunks of LONG_SENTENCE take LONG_CHUNK_S each; `long_chunks_done` counts finished ones."""

    long_chunks_done: int = 0
    long_chunk_started: threading.Event = field(default_factory=threading.Event)

    def record_chunk(self, sentence: str, index: int) -> None:
        super().record_chunk(sentence, index)
        if sentence == LONG_SENTENCE:
            self.long_chunk_started.set()
            time.sleep(LONG_CHUNK_S)
            self.long_chunks_done += 1


def _short_while_a_long_chunk_runs(harness: Harness, *, background_nice: int) -> tuple[int, int, SlowLongVoice]:
    """Long chunks done when the short job was published, and when it completed."""
    voice = SlowLongVoice()
    harness.start_agent(harness.config(chunk_seconds=0.35, background_nice=background_nice), voices=FakeVoices(voice))
    long = harness.job(LONG_SENTENCE, length_class="long")  # one sentence of 3 chunks
    harness.publish("long", long)
    assert voice.long_chunk_started.wait(20)
    before = voice.long_chunks_done
    short = harness.job("Quick one.")
    harness.publish("short", short)
    assert harness.wait_final(short.job_id).type == "completed"
    after = voice.long_chunks_done
    assert harness.wait_final(long.job_id, timeout_s=60).type == "completed"
    long_chunks = [call for call in voice.chunk_calls if call[0] == LONG_SENTENCE]
    assert long_chunks == [(LONG_SENTENCE, index) for index in range(3)]  # resumed, none twice
    expected, _ = run_job(message(LONG_SENTENCE), voices=FakeVoices(FakeVoice()), cache=DictCache(), settings=SETTINGS)
    assert pcm_of(harness.of(long.job_id)) == pcm_of(expected)
    return before, after, voice


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_short_job_completes_while_a_long_chunk_is_still_being_computed(harness: Harness) -> None:
    before, after, _ = _short_while_a_long_chunk_runs(harness, background_nice=19)
    assert before == 0 and after == 0  # the first long chunk was still in flight


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_without_background_steps_the_short_job_waits_for_the_chunk(harness: Harness) -> None:
    before, after, _ = _short_while_a_long_chunk_runs(harness, background_nice=0)
    assert before == 0 and after >= 1


def test_background_steps_are_off_for_an_agent_of_one_class() -> None:
    config = dataclasses.replace(AgentConfig.from_env({}, classes="short", agent_id="a"), metrics_port=0)
    assert len(config.queues) == 1 and config.background_nice == 19
    agent = Agent(config, voices=FakeVoices(), cache=DictCache())
    assert agent.background is None
