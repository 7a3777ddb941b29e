"""The pure domain function: message -> events, with a fake voice, a dict cache and a fake clock."""

from __future__ import annotations

import itertools
import json

import pytest

from synthesis_agent.cache import CachedAudio
from synthesis_agent.pipeline import JobRun, PipelineSettings, run_job
from synthesis_agent.protocol import JobEvent, JobMessage, decode_pcm16
from synthesis_agent.segments import DEFAULT_TARGET_SECONDS, SECONDS_PER_CHAR, plan_segments

from .fakes import FAKE_SAMPLE_RATE, FakeVoice, FakeVoices, sentences_text


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, CachedAudio] = {}

    def get(self, key: str) -> CachedAudio | None:
        return self.data.get(key)

    def put(self, key: str, audio: CachedAudio) -> None:
        self.data[key] = audio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = PipelineSettings(agent_id="test-agent", max_attempts=3, time_limit_s=60)


def message(text: str, *, job_id: str = "job-1", length_class: str = "long", **params: object) -> bytes:
    return JobMessage(
        job_id=job_id, attempt=1, text=text, voice="fake-voice", length_class=length_class, params=dict(params)
    ).to_bytes()


def segments_of(events: list[JobEvent]) -> list[JobEvent]:
    return [event for event in events if event.type == "segment"]


def covered(events: list[JobEvent]) -> list[int]:
    indices: list[int] = []
    for event in segments_of(events):
        first, count = event.data["first_sentence"], event.data["sentence_count"]
        indices += range(first, first + count)
    return indices


def test_job_becomes_started_segments_completed_with_all_audio() -> None:
    voice = FakeVoice()
    events, outcome = run_job(
        message(sentences_text(5)), voices=FakeVoices(voice), cache=DictCache(), settings=SETTINGS, queue="long"
    )
    assert outcome.status == "succeeded"
    assert events[0].type == "started"
    assert events[-1].type == "completed"
    assert [event.seq for event in events] == list(range(len(events)))
    assert {event.job_id for event in events} == {"job-1"} and {event.attempt for event in events} == {1}
    started = events[0].data
    assert started["sentence_count"] == 5 and started["sample_rate"] == FAKE_SAMPLE_RATE
    assert started["voice"] == "fake-voice" and started["model_checksum"] == "fake-checksum-0001"
    assert covered(events) == [0, 1, 2, 3, 4]
    expected = b"".join(voice.synthesize_sentence(s).to_pcm16_bytes() for s in voice.prepare(sentences_text(5)))
    assert b"".join(decode_pcm16(e.data["audio_b64"]) for e in segments_of(events)) == expected
    completed = events[-1].data
    assert completed["sentence_count"] == 5 and completed["cached_sentences"] == 0
    assert completed["segment_count"] == len(segments_of(events))
    assert completed["audio_seconds"] == pytest.approx(len(expected) / 2 / FAKE_SAMPLE_RATE, abs=1e-3)
    for event in events:
        assert JobEvent.from_bytes(event.to_bytes()) == event


def test_short_jobs_get_one_segment_per_sentence() -> None:
    events, _ = run_job(
        message(sentences_text(4), length_class="short"), voices=FakeVoices(), cache=DictCache(), settings=SETTINGS
    )
    assert [event.data["sentence_count"] for event in segments_of(events)] == [1, 1, 1, 1]


def test_long_jobs_group_sentences_after_a_fast_first_one() -> None:
    settings = PipelineSettings(agent_id="a", segment_target_seconds=5.0)
    events, _ = run_job(message(sentences_text(20)), voices=FakeVoices(), cache=DictCache(), settings=settings)
    sizes = [event.data["sentence_count"] for event in segments_of(events)]
    assert sizes[0] == 1 and max(sizes) > 1 and sum(sizes) == 20
    assert covered(events) == list(range(20))


def test_segment_plan_depends_only_on_the_text() -> None:
    sentences = [f"Sentence number {i} has some words in it." for i in range(40)]
    plan = plan_segments(sentences)
    assert plan == plan_segments(list(sentences))
    assert plan[0] == (0, 1)
    assert sum(count for _, count in plan) == 40
    assert all(first == prev[0] + prev[1] for prev, (first, _) in itertools.pairwise(plan))
    for first, count in plan[1:]:
        estimate = sum(len(s) for s in sentences[first : first + count]) * SECONDS_PER_CHAR
        assert estimate <= DEFAULT_TARGET_SECONDS or count == 1
    assert len(plan_segments(sentences, length_scale=2.0)) > len(plan)  # slower speech, smaller groups
    assert plan_segments(sentences[:3], one_per_sentence=True) == [(0, 1), (1, 1), (2, 1)]
    assert plan_segments([]) == []


def test_every_delivery_cuts_the_same_segments() -> None:
    """Preemption, cache hits and redelivery must not move segment boundaries (the gateway
    dedups segments by first_sentence)."""

    def boundaries(events: list[JobEvent]) -> list[tuple[int, int]]:
        return [(e.data["first_sentence"], e.data["sentence_count"]) for e in segments_of(events)]

    cache = DictCache()
    first, _ = run_job(message(sentences_text(30)), voices=FakeVoices(), cache=cache, settings=SETTINGS)
    replay, _ = run_job(
        message(sentences_text(30)), voices=FakeVoices(), cache=cache, settings=SETTINGS, redelivery_count=1
    )
    uncached, _ = run_job(message(sentences_text(30)), voices=FakeVoices(), cache=DictCache(), settings=SETTINGS)
    assert boundaries(first) == boundaries(replay) == boundaries(uncached)
    assert replay[-1].data["cached_sentences"] == 30


def test_paused_run_resumes_where_it_stopped_with_no_sentence_twice() -> None:
    voice = FakeVoice()
    run = JobRun(
        message(sentences_text(9)), queue="long", redelivery_count=0, voices=FakeVoices(voice),
        cache=DictCache(), settings=SETTINGS,
    )  # fmt: skip
    events = run.begin()
    for _ in range(3):
        events += run.step().events
    assert run.next_index == 3  # paused here while a higher job runs: the run keeps its place
    while run.outcome is None:
        events += run.step().events
    all_events = events
    assert covered(all_events) == list(range(9))
    assert voice.calls == voice.prepare(sentences_text(9))  # each sentence synthesized once, in order
    assert [event.seq for event in all_events] == list(range(len(all_events)))


def test_redelivered_job_replays_from_the_cache() -> None:
    voice, cache = FakeVoice(), DictCache()
    first, _ = run_job(message(sentences_text(6)), voices=FakeVoices(voice), cache=cache, settings=SETTINGS)
    second, outcome = run_job(
        message(sentences_text(6)), voices=FakeVoices(voice), cache=cache, settings=SETTINGS, redelivery_count=1
    )
    assert outcome.status == "succeeded"
    assert second[-1].data["cached_sentences"] == 6
    assert len(voice.calls) == 6
    audio = [b"".join(decode_pcm16(e.data["audio_b64"]) for e in segments_of(run)) for run in (first, second)]
    assert audio[0] == audio[1]


def test_parameters_change_the_cache_entry() -> None:
    voice, cache = FakeVoice(), DictCache()
    run_job(message("One. Two."), voices=FakeVoices(voice), cache=cache, settings=SETTINGS)
    events, _ = run_job(
        message("One. Two.", length_scale=1.5), voices=FakeVoices(voice), cache=cache, settings=SETTINGS
    )
    assert events[-1].data["cached_sentences"] == 0 and len(voice.calls) == 4


@pytest.mark.parametrize(
    ("payload", "error_type"),
    [
        (json.dumps({"schema": 99, "job_id": "job-x", "attempt": 2}).encode(), "ProtocolError"),
        (JobMessage("job-x", 2, "Hi.", "no-such-voice", "short").to_bytes(), "VoiceNotFoundError"),
        (JobMessage("job-x", 2, "Hi.", "", "short", params={"length_scale": 9}).to_bytes(), "ParameterError"),
        (JobMessage("job-x", 2, "Hi.", "", "short", params={"speaker": 3}).to_bytes(), "UnknownSpeakerError"),
        (JobMessage("job-x", 2, "   ", "", "short").to_bytes(), "EmptyTextError"),
    ],
)
def test_bad_messages_fail_at_once_without_retry(payload: bytes, error_type: str) -> None:
    events, outcome = run_job(payload, voices=FakeVoices(), cache=DictCache(), settings=SETTINGS)
    assert outcome.status == "failed" and outcome.reason == "bad_message"
    assert [event.type for event in events] == ["failed"]
    assert events[0].job_id == "job-x" and events[0].attempt == 2 and events[0].seq == 0
    assert events[0].data["error_type"] == error_type
    assert events[0].data["reason"]


def test_unreadable_message_without_job_id_fails_silently() -> None:
    events, outcome = run_job(b"\xff not json", voices=FakeVoices(), cache=DictCache(), settings=SETTINGS)
    assert events == [] and outcome.status == "failed" and outcome.reason == "bad_message"


@pytest.mark.parametrize(("redelivery_count", "status"), [(0, "retry"), (1, "retry"), (2, "failed"), (5, "failed")])
def test_synthesis_errors_retry_until_the_last_attempt(redelivery_count: int, status: str) -> None:
    voice = FakeVoice(fail_on=("BOOM",))
    events, outcome = run_job(
        message("Fine. This one goes BOOM. Never."),
        voices=FakeVoices(voice),
        cache=DictCache(),
        settings=SETTINGS,
        redelivery_count=redelivery_count,
    )
    assert outcome.status == status and outcome.reason == "synthesis_error"
    assert events[0].type == "started"
    if status == "failed":
        assert events[-1].type == "failed"
        assert events[-1].data["error_type"] == "RuntimeError"
        assert "failed after" in events[-1].data["reason"]
    else:
        assert "failed" not in [event.type for event in events]


def test_time_limit_is_checked_between_sentences_and_excludes_paused_time() -> None:
    clock = FakeClock()

    class SlowVoice(FakeVoice):
        def synthesize_sentence(self, sentence: str, params: object = None) -> object:  # type: ignore[override]
            clock.now += 4.0
            return super().synthesize_sentence(sentence)

    run = JobRun(
        message(sentences_text(10)), queue="long", redelivery_count=0, voices=FakeVoices(SlowVoice()),
        cache=DictCache(), settings=PipelineSettings(agent_id="a", time_limit_s=10), clock=clock,
    )  # fmt: skip
    events = run.begin()
    events += run.step().events
    clock.now += 1000  # paused: a higher class job ran meanwhile; does not count
    while run.outcome is None:
        events += run.step().events
    assert run.outcome.status == "failed" and run.outcome.reason == "time_limit"
    assert events[-1].type == "failed" and events[-1].data["error_type"] == "TimeLimitExceeded"
    assert "longer than 10 s" in events[-1].data["reason"]
    assert run.next_index == 3  # 3 sentences x 4 s = 12 s > 10 s: stopped before the 4th


def test_input_errors_during_synthesis_fail_without_retry_and_unspeakable_sentences_are_silent() -> None:
    from vits.errors import InvalidTextError, UnspeakableTextError

    class PickyVoice(FakeVoice):
        def synthesize_sentence(self, sentence: str, params: object = None) -> object:  # type: ignore[override]
            if "emoji" in sentence:
                raise UnspeakableTextError("nothing to pronounce")
            if "huge" in sentence:
                raise InvalidTextError("too long")
            return super().synthesize_sentence(sentence)

    events, outcome = run_job(
        message("One. An emoji. Two."), voices=FakeVoices(PickyVoice()), cache=DictCache(), settings=SETTINGS
    )
    assert outcome.status == "succeeded" and covered(events) == [0, 1, 2]
    events, outcome = run_job(
        message("One. A huge one."), voices=FakeVoices(PickyVoice()), cache=DictCache(), settings=SETTINGS
    )
    assert outcome.status == "failed" and outcome.reason == "bad_message"
    assert events[-1].data["error_type"] == "InvalidTextError"
