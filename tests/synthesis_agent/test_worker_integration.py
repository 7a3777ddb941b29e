"""The agent loop against the real pulsar-lite broker (and real Redis where it matters).

Agents run in threads with a fake voice (fast, deterministic); topics are unique per test.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from devstack.broker import free_port
from synthesis_agent import metrics
from synthesis_agent.cache import FileSentenceCache, RedisSentenceCache
from tts_contracts import JobEvent

from .conftest import Harness
from .fakes import FAKE_SAMPLE_RATE, FakeVoice, FakeVoices, gateway_tiling, sentences_text, tiles

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def covered(events: list[JobEvent]) -> list[int]:
    indices: list[int] = []
    for event in events:
        if event.type == "segment":
            first = event.first_sentence
            indices += range(first, first + event.sentence_count)
    return indices


def test_job_is_synthesized_published_and_acked(harness: Harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    voice = FakeVoice()
    succeeded = metrics.sample("tts_agent_jobs_total", {"length_class": "short", "outcome": "succeeded"})
    harness.start_agent(harness.config("short"), voices=FakeVoices(voice), cache=FileSentenceCache(tmp_path, ttl_s=60))
    job = harness.job(sentences_text(3))
    harness.publish("short", job)
    final = harness.wait_final(job.job_id)
    events = harness.of(job.job_id)
    assert final.type == "completed"
    assert [e.type for e in events] == ["started", "segment", "segment", "segment", "completed"]
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    # One message a step: `started` with the first sentence, `completed` with the last.
    assert harness.messages_of(job.job_id) == [["started", "segment"], ["segment"], ["segment", "completed"]]
    assert covered(events) == [0, 1, 2]
    pcm = b"".join(e.pcm for e in events if e.type == "segment")
    assert len(pcm) / 2 / FAKE_SAMPLE_RATE == pytest.approx(final.audio_seconds, abs=1e-3)
    assert events[0].queue_wait_s is not None and events[0].queue_wait_s >= 0
    # The agent acks and counts right after the final event is confirmed, so poll a moment.
    assert eventually(
        lambda: (
            metrics.sample("tts_agent_jobs_total", {"length_class": "short", "outcome": "succeeded"}) == succeeded + 1
        )
    )
    harness.agents[0].shutdown()
    assert harness.backlog("short") == []  # acked: nothing comes back


def test_repeated_job_is_served_from_redis(harness: Harness, redis_url: str) -> None:
    voice = FakeVoice()
    cache = RedisSentenceCache(redis_url, ttl_s=60)
    harness.start_agent(harness.config("medium"), voices=FakeVoices(voice), cache=cache)
    first, second = harness.job(sentences_text(5), length_class="medium"), harness.job(sentences_text(5))
    harness.publish("medium", first)
    assert harness.wait_final(first.job_id).cached_sentences == 0
    harness.publish("medium", second)
    completed = harness.wait_final(second.job_id)
    assert completed.type == "completed" and completed.cached_sentences == 5
    assert len(voice.calls) == 5
    audio = [b"".join(e.pcm for e in harness.of(job.job_id) if e.type == "segment") for job in (first, second)]
    assert audio[0] == audio[1]


def test_unreachable_redis_degrades_to_uncached_synthesis(harness: Harness) -> None:
    errors = metrics.sample("tts_agent_cache_requests_total", {"result": "error"})
    cache = RedisSentenceCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60)
    harness.start_agent(harness.config("short"), cache=cache)
    job = harness.job(sentences_text(3))
    harness.publish("short", job)
    assert harness.wait_final(job.job_id, timeout_s=20).type == "completed"
    assert metrics.sample("tts_agent_cache_requests_total", {"result": "error"}) > errors


def test_short_job_overtakes_a_backlog_of_long_jobs(harness: Harness) -> None:
    voice = FakeVoice(delay_s=0.04)
    preemptions = metrics.sample("tts_agent_preemptions_total", {"length_class": "long"})
    harness.start_agent(harness.config("short,medium,long"), voices=FakeVoices(voice))
    longs = [harness.job(sentences_text(25, tag=f"L{i}"), length_class="long") for i in range(3)]
    for job in longs:
        harness.publish("long", job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == longs[0].job_id for e in seen))
    short = harness.job("A quick one. Done.")
    harness.publish("short", short)
    assert harness.wait_final(short.job_id).type == "completed"
    finished_longs = [j for j in longs if any(e.job_id == j.job_id and e.type == "completed" for e in harness.seen)]
    assert finished_longs == []  # the short job did not wait for the running long job, let alone the backlog
    for job in longs:
        assert harness.wait_final(job.job_id, timeout_s=60).type == "completed"
        assert covered(harness.of(job.job_id)) == list(range(25))
    assert metrics.sample("tts_agent_preemptions_total", {"length_class": "long"}) >= preemptions + 1
    assert len(voice.calls) == len(set(voice.calls)) == 3 * 25 + 2  # nothing synthesized twice
    # The paused long job's sentences stayed in order around the preemption.
    order = [s for s in voice.calls if "L0" in s]
    assert order == FakeVoice().prepare(sentences_text(25, tag="L0"))


def test_poison_messages_fail_and_are_acked(harness: Harness) -> None:
    bad_jobs = metrics.sample("tts_agent_failures_total", {"length_class": "short", "reason": "bad_message"})
    harness.start_agent(harness.config("short"))
    harness.publish("short", b"\x00 definitely not json")
    harness.publish("short", b'{"schema": 1, "job_id": "poison-1", "attempt": 1}')  # no text
    bad_voice = dataclasses.replace(harness.job("Hello."), voice="no-such-voice")
    harness.publish("short", bad_voice)
    assert harness.wait_final("poison-1").type == "failed"
    failed = harness.wait_final(bad_voice.job_id)
    assert failed.type == "failed" and failed.error_type == "VoiceNotFoundError"
    assert failed.code == "invalid_input" and harness.wait_final("poison-1").code == "invalid_input"
    assert "no-such-voice" in failed.reason
    assert eventually(
        lambda: (
            metrics.sample("tts_agent_failures_total", {"length_class": "short", "reason": "bad_message"})
            >= bad_jobs + 3
        )
    )
    harness.agents[0].shutdown()
    assert harness.backlog("short") == []


def test_synthesis_error_is_retried_then_failed_on_the_last_attempt(harness: Harness) -> None:
    harness.start_agent(harness.config("short", max_attempts=2), voices=FakeVoices(FakeVoice(fail_on=("BOOM",))))
    job = harness.job("Fine. This one goes BOOM.")
    harness.publish("short", job)
    failed = harness.wait_final(job.job_id, timeout_s=30)
    assert failed.type == "failed" and failed.error_type == "RuntimeError"
    assert "2 attempts" in failed.reason and failed.code == "synthesis_error"
    events = harness.of(job.job_id)
    assert [e.type for e in events].count("started") == 2  # one per delivery, seq restarting at 0
    assert [e.seq for e in events if e.type == "started"] == [0, 0]
    harness.agents[0].shutdown()
    assert harness.backlog("short") == []


def test_time_limit_fails_the_job(harness: Harness) -> None:
    harness.start_agent(
        harness.config("long", job_time_limit_s=0.3, job_time_limit_rtf=0.0), voices=FakeVoices(FakeVoice(delay_s=0.1))
    )
    job = harness.job(sentences_text(20), length_class="long")
    harness.publish("long", job)
    failed = harness.wait_final(job.job_id)
    assert failed.type == "failed" and "longer than 0.3 s" in failed.reason and failed.code == "time_limit"


def test_fifo_mode_serves_the_single_queue(harness: Harness) -> None:
    harness.start_agent(harness.config("short,long", scheduling="fifo"))
    job = harness.job("One. Two.", length_class="long")
    harness.publish("fifo", job)
    assert harness.wait_final(job.job_id).type == "completed"


def test_stop_releases_paused_and_running_jobs_to_another_agent(harness: Harness, redis_url: str) -> None:
    slow = FakeVoice(delay_s=0.1)
    first = harness.start_agent(
        harness.config("short,long", shutdown_grace_s=0.2),
        voices=FakeVoices(slow),
        cache=RedisSentenceCache(redis_url, ttl_s=60),
    )
    long_job, short_job = harness.job(sentences_text(30), length_class="long"), harness.job(sentences_text(30, tag="S"))
    harness.publish("long", long_job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == long_job.job_id for e in seen))
    harness.publish("short", short_job)  # long, preempted by a (too long) short job
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == short_job.job_id for e in seen))
    began = time.monotonic()
    first.shutdown()
    assert time.monotonic() - began < 5
    done_by_first = len(slow.calls)
    fast = FakeVoice()
    harness.start_agent(
        harness.config("short,long"), voices=FakeVoices(fast), cache=RedisSentenceCache(redis_url, ttl_s=60)
    )
    for job in (long_job, short_job):
        completed = harness.wait_final(job.job_id)
        assert completed.type == "completed"
        last_delivery = [e for e in harness.of(job.job_id) if e.agent_id == completed.agent_id]
        assert covered(last_delivery) == list(range(30))
        assert tiles(gateway_tiling(harness.of(job.job_id)), 30)
    assert len(fast.calls) + done_by_first == 60  # every sentence synthesized exactly once overall
    assert set(fast.calls).isdisjoint(slow.calls)


def test_two_agents_serving_the_same_classes_share_the_queue(harness: Harness) -> None:
    """Two processes' first consumers on one class get the same consumer id, which pulsar-lite
    refuses; the agent retries with the next id (see Agent._subscribe)."""
    voices = [FakeVoice(delay_s=0.05), FakeVoice(delay_s=0.05)]
    for voice in voices:
        harness.start_agent(harness.config("medium,long"), voices=FakeVoices(voice), operation_timeout_s=3)
    jobs = [harness.job(sentences_text(6, tag=f"J{i}"), length_class="medium") for i in range(4)]
    for job in jobs:
        harness.publish("medium", job)
    for job in jobs:
        assert harness.wait_final(job.job_id, timeout_s=60).type == "completed"
    assert len(voices[0].calls) + len(voices[1].calls) == 24
    assert voices[0].calls and voices[1].calls  # both agents took work


def test_a_broker_crash_mid_job_loses_nothing(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of the broker while a job runs: the agent reconnects, and the job still ends
    with a completed event whose segments tile every sentence (at-least-once, idempotent)."""
    import uuid

    import pulsar

    from devstack.broker import EmbeddedBroker

    from .conftest import _quiet_logger

    broker = EmbeddedBroker(tmp_path / "broker").start()
    client = pulsar.Client(broker.url, logger=_quiet_logger(), operation_timeout_seconds=10)
    prefix = f"crash{uuid.uuid4().hex[:8]}"
    events = client.subscribe(
        f"persistent://public/default/{prefix}-events",
        "test-reader",
        initial_position=pulsar.InitialPosition.Earliest,
    )
    harness = Harness(url=broker.url, prefix=prefix, client=client, events=events)
    try:
        harness.start_agent(
            harness.config("long"),
            voices=FakeVoices(FakeVoice(delay_s=0.05)),
            cache=RedisSentenceCache(redis_url, ttl_s=60),
        )
        job = harness.job(sentences_text(60), length_class="long")
        harness.publish("long", job)
        harness.wait_for(lambda seen: any(e.type == "segment" for e in seen), timeout_s=30)
        broker.kill()
        time.sleep(1.0)
        broker.start()
        completed = harness.wait_final(job.job_id, timeout_s=90)
        assert completed.type == "completed"
        assert tiles(gateway_tiling(harness.of(job.job_id)), 60)
    finally:
        for running in harness.agents:
            running.shutdown()
        client.close()
        broker.stop()


def _seen_at(harness: Harness, job_id: str, kind: str, *, timeout_s: float = 20.0) -> float:
    """When the harness had read the job's first `kind` event (monotonic seconds)."""
    harness.wait_for(lambda seen: any(e.job_id == job_id and e.type == kind for e in seen), timeout_s=timeout_s)
    return time.monotonic()


def test_started_is_sent_with_the_first_sentence_and_keeps_its_own_time(harness: Harness) -> None:
    """A one-sentence job's `started` waits for its segment, so the gateway applies the job's
    events together; its `sent_at` is still when the run began."""
    harness.start_agent(harness.config("short"), voices=FakeVoices(FakeVoice(delay_s=0.3)))
    job = harness.job("Just one sentence here.")
    harness.publish("short", job)
    started_at = _seen_at(harness, job.job_id, "started")
    segment_at = _seen_at(harness, job.job_id, "segment")
    assert harness.wait_final(job.job_id).type == "completed"
    started, segment = (next(e for e in harness.of(job.job_id) if e.type == kind) for kind in ("started", "segment"))
    assert segment_at - started_at < 0.2  # together, not a synthesis apart
    assert segment.sent_at - started.sent_at >= 0.25  # made before the 0.3 s synthesis
    assert [e.type for e in harness.of(job.job_id)] == ["started", "segment", "completed"]


def test_a_slow_first_sentence_does_not_hold_started_back_for_long(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two chunks the agent sends a `started` held back longer than STARTED_SEND_AFTER_S."""
    from synthesis_agent import worker

    from .fakes import ChunkedFakeVoice

    monkeypatch.setattr(worker, "STARTED_SEND_AFTER_S", 0.2)
    voice = ChunkedFakeVoice(chunk_delay_s=0.1)
    harness.start_agent(harness.config("short", chunk_seconds=0.1), voices=FakeVoices(voice))
    job = harness.job("A sentence long enough for ten chunks of a tenth of a second.")  # 0.6 s: 6 chunks
    harness.publish("short", job)
    started_at = _seen_at(harness, job.job_id, "started")
    segment_at = _seen_at(harness, job.job_id, "segment")
    assert segment_at - started_at >= 0.2  # sent while the sentence was still being synthesized
    assert harness.wait_final(job.job_id).type == "completed"
