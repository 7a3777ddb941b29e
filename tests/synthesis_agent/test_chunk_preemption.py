"""Preemption between chunks: a short job waits at most one chunk of a long sentence, and the
long job resumes where it stopped with the audio of an uninterrupted run."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import numpy as np
import pytest

from synthesis_agent.pipeline import JobRun, run_job
from synthesis_agent.voice import VoiceLike, VoicePool, load_vits_voice

from .conftest import Harness
from .fakes import ChunkedFakeVoice, FakeVoice, FakeVoices
from .test_chunked_steps import CHUNKED, LONG_SENTENCE, pcm_of
from .test_pipeline import SETTINGS, DictCache, message
from .test_worker_integration import eventually


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_short_job_is_served_after_at_most_one_chunk_of_a_long_sentence(harness: Harness) -> None:
    voice = ChunkedFakeVoice(chunk_delay_s=0.3)
    harness.start_agent(harness.config(chunk_seconds=0.1), voices=FakeVoices(voice))
    long = harness.job(LONG_SENTENCE, length_class="long")  # one sentence of 10 chunks
    harness.publish("long", long)
    assert eventually(lambda: len(voice.chunk_calls) >= 3, timeout_s=20)
    short = harness.job("Quick one.")
    before = len(voice.chunk_calls)
    harness.publish("short", short)
    assert harness.wait_final(short.job_id).type == "completed"
    assert before < 10  # the long sentence was in progress
    first_short = voice.chunk_calls.index(("Quick one.", 0))
    # The chunk running at publish time finishes; at most one more may start while the message
    # travels to the agent's consumer. Then the short job runs.
    assert first_short - before <= 1
    assert harness.wait_final(long.job_id, timeout_s=60).type == "completed"
    long_chunks = [call for call in voice.chunk_calls if call[0] == LONG_SENTENCE]
    assert long_chunks == [(LONG_SENTENCE, index) for index in range(10)]  # resumed, none twice
    expected, _ = run_job(message(LONG_SENTENCE), voices=FakeVoices(FakeVoice()), cache=DictCache(), settings=SETTINGS)
    assert pcm_of(harness.of(long.job_id)) == pcm_of(expected)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-thread", "2-threads"])
def real_voice(request: pytest.FixtureRequest) -> Iterator[VoiceLike]:
    # TTS_AGENT_THREADS=2: vits decodes two windows per step, one per thread (vits/parallel.py).
    import torch

    previous = torch.get_num_threads()
    voice = VoicePool(functools.partial(load_vits_voice, threads=request.param), "en_US-joe-medium").get(None)
    assert voice.workers.count == request.param  # type: ignore[attr-defined]
    yield voice
    torch.set_num_threads(previous)


class OneVoice:
    def __init__(self, voice: VoiceLike) -> None:
        self.voice = voice

    def get(self, voice_id: str | None) -> VoiceLike:
        return self.voice


@pytest.mark.timeout(300)
def test_real_voice_resumes_mid_sentence_with_the_audio_of_an_uninterrupted_run(real_voice: VoiceLike) -> None:
    voices = OneVoice(real_voice)
    settings = dataclasses.replace(CHUNKED, chunk_seconds=0.5)
    text = "The history of the city began with a small settlement on the river, where traders met every spring."
    run = JobRun(
        message(text, seed=11), queue="long", redelivery_count=0, voices=voices, cache=DictCache(), settings=settings
    )
    events = run.begin()
    events += run.step().events
    events += run.step().events
    assert run.mid_sentence  # two chunks of a ~6 s sentence done
    short, outcome = run_job(
        message("Your order has shipped.", job_id="job-2", length_class="short", seed=5),
        voices=voices, cache=DictCache(), settings=settings, queue="short",
    )  # fmt: skip
    assert outcome.status == "succeeded" and pcm_of(short)
    while run.outcome is None:
        events += run.step().events
    uninterrupted, _ = run_job(message(text, seed=11), voices=voices, cache=DictCache(), settings=settings)
    assert pcm_of(events) == pcm_of(uninterrupted)
    # And the same audio as whole-sentence synthesis, up to PCM16 rounding.
    whole_settings = dataclasses.replace(settings, chunk_seconds=0)
    whole, _ = run_job(message(text, seed=11), voices=voices, cache=DictCache(), settings=whole_settings)
    chunked_samples = np.frombuffer(pcm_of(events), dtype="<i2").astype(np.int32)
    whole_samples = np.frombuffer(pcm_of(whole), dtype="<i2").astype(np.int32)
    assert len(chunked_samples) == len(whole_samples) > 22050 * 3
    assert int(np.abs(chunked_samples - whole_samples).max()) <= 2
