"""A voice that computes several sentences at once: the run computes following sentences beside
the current one and still delivers them in order, each once, with the audio of a one-at-a-time run."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator

import numpy as np
import pytest

from synthesis_agent.ahead import MAX_CREDITS, MAX_SENTENCES_AHEAD, SentenceBoard
from synthesis_agent.cache import CachedAudio, cache_key
from synthesis_agent.pipeline import JobRun, run_job
from synthesis_agent.sentence import SentenceSynthesis
from synthesis_agent.voice import VoiceLike, VoicePool, load_vits_voice
from tts_contracts import JobEvent
from vits.params import SynthesisParams

from .fakes import ChunkedFakeVoice, FakeVoice, FakeVoices, sentences_text
from .test_chunked_steps import CHUNKED, LONG_SENTENCE, pcm_of
from .test_pipeline import SETTINGS, DictCache, message

SHORT_ONE = "Short one."
TEXT = f"{LONG_SENTENCE} {SHORT_ONE} Another sentence that is here. {LONG_SENTENCE.replace('long', 'last')}"


def steps(run: JobRun) -> list[JobEvent]:
    events = run.begin()
    while run.outcome is None:
        events += run.step().events
    return events


def wait_for_chunks(voice: ChunkedFakeVoice, count: int) -> None:
    """Until `count` chunks are computed (5 s at most), then 0.1 s more for any that should not come."""
    deadline = time.monotonic() + 5
    while len(voice.chunk_calls) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)


def new_run(text: str, voice: FakeVoice, cache: DictCache, **kwargs: object) -> JobRun:
    return JobRun(
        message(text, **kwargs), queue="long", redelivery_count=0, voices=FakeVoices(voice), cache=cache,
        settings=CHUNKED,
    )  # fmt: skip


def test_following_sentences_are_computed_beside_the_current_one_and_delivered_in_order() -> None:
    voice = ChunkedFakeVoice(parallel_sentences=2, chunk_delay_s=0.002)
    events = steps(new_run(TEXT, voice, DictCache()))
    sentences = voice.prepare(TEXT)
    assert len(voice.chunk_calls) == len(set(voice.chunk_calls))  # no chunk computed twice
    chunk_counts = [len(list(ChunkedFakeVoice().sentence_chunks(s, chunk_seconds=0.1))) for s in sentences]
    assert chunk_counts[0] == 10 and len(voice.chunk_calls) == sum(chunk_counts)
    on_workers = {voice.chunk_calls[i][0] for i, thread in enumerate(voice.chunk_threads) if "fake-worker" in thread}
    assert sentences[1] in on_workers and sentences[0] not in on_workers  # the second beside the first
    # The first sentence's last chunk comes after chunks of later ones: they were computed ahead.
    first_done = voice.chunk_calls.index((sentences[0], 9))
    assert any(sentence != sentences[0] for sentence, _ in voice.chunk_calls[:first_done])
    assert set(voice.serial_sentences) == set(sentences)  # each made to run beside another
    assert sentences[-1] in voice.spread_sentences  # the last one, alone, over all threads
    one_at_a_time = steps(new_run(TEXT, ChunkedFakeVoice(), DictCache()))
    assert pcm_of(events) == pcm_of(one_at_a_time)
    assert [(e.type, getattr(e, "first_sentence", None)) for e in events] == [
        (e.type, getattr(e, "first_sentence", None)) for e in one_at_a_time
    ]
    completed = events[-1]
    assert completed.type == "completed" and completed.sentence_count == 4 and completed.cached_sentences == 0


def test_a_worker_computes_at_most_max_credits_chunks_past_the_last_step() -> None:
    voice = ChunkedFakeVoice(parallel_sentences=2)
    text = f"Short. {LONG_SENTENCE}"
    run = new_run(text, voice, DictCache())
    run.begin()
    run.step()  # delivers "Short." and starts a worker on the long sentence
    wait_for_chunks(voice, 1 + MAX_CREDITS)  # no step comes: the worker must stop on its own
    long_chunks = [call for call in voice.chunk_calls if call[0] != "Short."]
    assert len(long_chunks) == MAX_CREDITS
    while run.outcome is None:
        run.step()
    assert len(voice.chunk_calls) == len(set(voice.chunk_calls)) == 11


def test_a_worker_that_completes_its_sentence_goes_on_with_the_next_without_waiting_for_a_step() -> None:
    voice = ChunkedFakeVoice(parallel_sentences=2)
    tiny_chunks = len(list(ChunkedFakeVoice().sentence_chunks("Tiny.", chunk_seconds=0.1)))
    assert tiny_chunks < MAX_CREDITS
    run = new_run(f"Short. Tiny. {LONG_SENTENCE}", voice, DictCache())
    run.begin()
    run.step()  # computes "Short." here and starts a worker on "Tiny."
    wait_for_chunks(voice, 1 + MAX_CREDITS)  # no step comes: the worker spends its credits and stops
    ahead = [sentence for sentence, _ in voice.chunk_calls if sentence != "Short."]
    # All of "Tiny.", then the long sentence for the credits left, with no step in between.
    assert ahead == ["Tiny."] * tiny_chunks + [LONG_SENTENCE] * (MAX_CREDITS - tiny_chunks)
    while run.outcome is None:
        run.step()
    assert len(voice.chunk_calls) == len(set(voice.chunk_calls))


def test_a_worker_follows_on_while_the_runs_thread_starts_a_sentence() -> None:
    """A start reads the cache and runs the front end (a Redis read may wait for its timeout):
    the board must not hold its lock meanwhile, or a worker done with its sentence waits too."""
    voice = ChunkedFakeVoice(parallel_sentences=2, chunk_delay_s=0.02)
    sentences = ["Short.", "Tiny.", *voice.prepare(sentences_text(MAX_SENTENCES_AHEAD + 1, tag="board"))]
    slow = len(sentences) - 1  # first within reach of `pick(2)` only
    followed_during_slow_start: list[bool] = []

    def synthesis(index: int) -> SentenceSynthesis:
        return SentenceSynthesis(
            voice, sentences[index], SynthesisParams(), chunk_seconds=0.1, clock=time.monotonic, parallel=False
        )

    def start(index: int) -> SentenceSynthesis:
        if index == slow:  # wait (2 s at most) for the worker to go on from "Tiny." to sentence 2
            deadline = time.monotonic() + 2
            while (sentences[2], 0) not in voice.chunk_calls and time.monotonic() < deadline:
                time.sleep(0.005)
            followed_during_slow_start.append((sentences[2], 0) in voice.chunk_calls)
        return synthesis(index)

    board = SentenceBoard(voice, start, sentence_count=len(sentences), workers=1)
    board.adopt(0, synthesis(0))
    board.grant(0)  # prepares sentences 1 to MAX_SENTENCES_AHEAD + 1 and starts a worker on "Tiny."
    board.pick(2)  # the slow start, while the worker completes "Tiny."
    board.stop()
    assert followed_during_slow_start == [True]


def test_many_sentences_ahead_are_each_computed_once_and_delivered_in_order() -> None:
    # Workers moving on by themselves while the run's thread picks: no sentence may be taken twice.
    text = sentences_text(30, tag="many")
    voice = ChunkedFakeVoice(parallel_sentences=3, chunk_delay_s=0.001)
    events = steps(new_run(text, voice, DictCache()))
    assert len(voice.chunk_calls) == len(set(voice.chunk_calls))
    assert any("fake-worker" in thread for thread in voice.chunk_threads)
    assert pcm_of(events) == pcm_of(steps(new_run(text, ChunkedFakeVoice(), DictCache())))
    assert events[-1].type == "completed" and events[-1].sentence_count == 30


def test_a_cached_sentence_ahead_is_not_computed_and_its_cache_read_is_counted_once() -> None:
    voice, cache = ChunkedFakeVoice(parallel_sentences=2), DictCache()
    sentences = voice.prepare(TEXT)
    info = voice.info
    key = cache_key(
        voice_id=info.id, model_checksum=info.model_checksum, params=SynthesisParams().to_dict(), sentence=sentences[1]
    )
    cache.put(key, CachedAudio(pcm=voice.tone(sentences[1]).to_pcm16_bytes(), sample_rate=voice.info.sample_rate))
    reads: list[str] = []
    original_get = cache.get

    def counting_get(key: str) -> CachedAudio | None:
        reads.append(key)
        return original_get(key)

    cache.get = counting_get  # type: ignore[method-assign]
    events = steps(new_run(TEXT, voice, cache))
    assert all(sentence != sentences[1] for sentence, _ in voice.chunk_calls)
    assert reads.count(key) == 1
    assert events[-1].type == "completed" and events[-1].cached_sentences == 1
    assert pcm_of(events) == pcm_of(steps(new_run(TEXT, ChunkedFakeVoice(), DictCache())))


def test_a_sentence_ahead_that_cannot_start_fails_on_its_own_turn_as_without_lookahead() -> None:
    text = f"{LONG_SENTENCE} A boom here. Fine."
    voice = ChunkedFakeVoice(parallel_sentences=2, fail_on=("boom",))
    run = new_run(text, voice, DictCache())
    run.begin()
    made = []
    for _ in range(9):  # the first sentence's first nine chunks: the failing one is not started
        made += run.step().events
        assert run.outcome is None
    assert [event.type for event in made] == ["preview"]  # of the long first sentence, and nothing else
    while run.outcome is None:
        run.step()
    assert run.outcome.status == "retry" and run.outcome.reason == "synthesis_error"
    assert run.next_index == 1  # the first sentence was delivered, the failure is the second's


def test_a_paused_run_with_sentences_ahead_resumes_without_recomputing() -> None:
    voice = ChunkedFakeVoice(parallel_sentences=2)
    run = new_run(TEXT, voice, DictCache())
    events = run.begin()
    for _ in range(4):
        events += run.step().events
    _, outcome = run_job(
        message("Quick.", job_id="job-2", length_class="short"), voices=FakeVoices(voice), cache=DictCache(),
        settings=CHUNKED, queue="short",
    )  # fmt: skip
    assert outcome.status == "succeeded"
    while run.outcome is None:
        events += run.step().events
    long_chunks = [call for call in voice.chunk_calls if call[0] != "Quick."]
    assert len(long_chunks) == len(set(long_chunks))
    assert pcm_of(events) == pcm_of(steps(new_run(TEXT, ChunkedFakeVoice(), DictCache())))


def test_one_at_a_time_voices_and_whole_sentences_compute_nothing_ahead() -> None:
    voice = ChunkedFakeVoice(parallel_sentences=1)
    steps(new_run(TEXT, voice, DictCache()))
    assert voice.serial_sentences == [] and voice.spread_sentences == []
    assert all("fake-worker" not in thread for thread in voice.chunk_threads)
    wide = ChunkedFakeVoice(parallel_sentences=2)
    whole = dataclasses.replace(SETTINGS, chunk_seconds=0.0)
    events, _ = run_job(message(TEXT), voices=FakeVoices(wide), cache=DictCache(), settings=whole)
    assert wide.chunk_calls == [] and wide.calls == wide.prepare(TEXT)
    assert events[-1].type == "completed"


@pytest.fixture(scope="module")
def two_thread_voice() -> Iterator[VoiceLike]:
    import torch

    previous = torch.get_num_threads()
    yield VoicePool(functools.partial(load_vits_voice, threads=2), "en_US-joe-medium").get(None)
    torch.set_num_threads(previous)


@pytest.mark.timeout(300)
def test_real_voice_sentences_side_by_side_sound_like_one_at_a_time(two_thread_voice: VoiceLike) -> None:
    class OneVoice:
        def get(self, voice_id: str | None) -> VoiceLike:
            return two_thread_voice

    settings = dataclasses.replace(CHUNKED, chunk_seconds=0.5)
    text = (
        "The history of the city began with a small settlement on the river. Traders met there every spring. "
        "Later a bridge was built, and the town grew along both banks of the water."
    )

    def pcm(run_settings: object) -> np.ndarray:
        events, outcome = run_job(message(text, seed=11), voices=OneVoice(), cache=DictCache(), settings=run_settings)  # type: ignore[arg-type]
        assert outcome.status == "succeeded"
        return np.frombuffer(pcm_of(events), dtype="<i2").astype(np.int32)

    side_by_side = pcm(settings)
    whole = pcm(dataclasses.replace(settings, chunk_seconds=0))  # one sentence at a time, whole sentences
    assert len(side_by_side) == len(whole) > 22050 * 5
    assert int(np.abs(side_by_side - whole).max()) <= 2
