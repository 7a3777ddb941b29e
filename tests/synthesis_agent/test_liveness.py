"""Liveness and ownership against the real broker and Redis: heartbeats for held jobs, claims,
cancellation through the control topic, and the crash-loop counter."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pulsar
import pytest
import redis

from devstack.broker import free_port
from synthesis_agent import metrics
from synthesis_agent.claims import RedisClaims
from tts_contracts import FailedEvent, HeartbeatEvent, JobEvent, SegmentEvent, claim_key

from .conftest import Harness
from .fakes import FakeVoice, FakeVoices, sentences_text
from .test_worker_integration import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def claims_for(redis_url: str, agent_id: str, ttl_s: float = 5.0) -> RedisClaims:
    return RedisClaims(redis_url, agent_id=agent_id, ttl_s=ttl_s)


def test_every_held_job_heartbeats_running_or_paused(harness: Harness) -> None:
    voice = FakeVoice(delay_s=0.05)
    # Inline steps: a background job is not paused by a short one (it goes on at low priority,
    # test_background.py), and this test is about the paused job's heartbeats.
    config = harness.config("short,long", heartbeat_interval_s=0.3, background_nice=0)
    harness.start_agent(config, voices=FakeVoices(voice))
    long_job = harness.job(sentences_text(40, tag="L"), length_class="long")
    harness.publish("long", long_job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == long_job.job_id for e in seen))
    short_job = harness.job(sentences_text(30, tag="S"))  # long enough to hold the long job paused
    harness.publish("short", short_job)

    def paused_beat(seen: list) -> bool:  # type: ignore[type-arg]
        return any(isinstance(e, HeartbeatEvent) and e.job_id == long_job.job_id and e.paused for e in seen)

    harness.wait_for(paused_beat, timeout_s=20)
    harness.wait_for(lambda seen: any(isinstance(e, HeartbeatEvent) and e.job_id == short_job.job_id for e in seen))
    paused = next(e for e in harness.seen if isinstance(e, HeartbeatEvent) and e.paused)
    assert paused.sentence_count == 40 and 0 < paused.sentences_done < 40
    assert harness.wait_final(long_job.job_id, timeout_s=60).type == "completed"
    for job in (long_job, short_job):
        seqs = [e.seq for e in harness.of(job.job_id)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_claimed_job_is_not_synthesized_twice_at_once(harness: Harness, redis_url: str) -> None:
    held = metrics.sample("tts_agent_claims_total", {"result": "held_elsewhere"})
    voices = {name: FakeVoice(delay_s=0.1) for name in ("agent-first", "agent-second")}
    for name, voice in voices.items():
        running = harness.start_agent(
            # The holder renews its claim (1.5 s) every 0.3 s: alive through the idle agent's recheck.
            harness.config("long", agent_id=name, heartbeat_interval_s=0.3),
            voices=FakeVoices(voice),
            claims=claims_for(redis_url, name, ttl_s=1.5),
            operation_timeout_s=3,
        )
        assert running.agent.ready.wait(30)
    job = harness.job(sentences_text(40), length_class="long")
    harness.publish("long", job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == job.job_id for e in seen))
    holder = harness.of(job.job_id)[0].agent_id
    client = redis.Redis.from_url(redis_url)
    assert client.get(claim_key(job_id=job.job_id, attempt=1)) == holder.encode()
    # Three re-sends of the same attempt while the holder still works on it. The broker may park
    # one in the holder's receive queue (one message at most: receiver_queue_size=1), which the
    # holder takes up after finishing, one after the other, not at once; at least two reach the
    # idle agent, which finds the claim held, keeps them past the claim's expiry (1.5 s) and,
    # finding it renewed, acks them: each is claimed twice, held both times.
    for _ in range(3):
        harness.publish("long", job)
    assert eventually(lambda: metrics.sample("tts_agent_claims_total", {"result": "held_elsewhere"}) >= held + 4)
    completed = harness.wait_final(job.job_id, timeout_s=60)
    assert completed.type == "completed" and completed.agent_id == holder
    assert {e.agent_id for e in harness.of(job.job_id)} == {holder}
    idle = next(name for name in voices if name != holder)
    assert voices[idle].calls == [] and len(voices[holder].calls) >= 40
    for running in harness.agents:
        running.shutdown()
    assert len(harness.backlog("long")) <= 1  # the idle agent's duplicates were acked, not left to loop


def test_without_redis_claims_degrade_to_unclaimed_work(harness: Harness) -> None:
    errors = metrics.sample("tts_agent_claims_total", {"result": "error"})
    dead = RedisClaims(f"redis://127.0.0.1:{free_port()}/0", agent_id="lonely", ttl_s=5)
    harness.start_agent(harness.config("short"), claims=dead)
    job = harness.job(sentences_text(2))
    harness.publish("short", job)
    assert harness.wait_final(job.job_id, timeout_s=30).type == "completed"
    assert metrics.sample("tts_agent_claims_total", {"result": "error"}) == errors + 1


def test_cancel_stops_a_long_job_within_one_sentence(harness: Harness, redis_url: str) -> None:
    voice = FakeVoice(delay_s=0.1)
    ended = metrics.sample("tts_agent_jobs_total", {"length_class": "long", "outcome": "ended"})
    harness.start_agent(harness.config("long"), voices=FakeVoices(voice), claims=claims_for(redis_url, "agent-c"))
    job = harness.job(sentences_text(200), length_class="long")
    harness.publish("long", job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == job.job_id for e in seen))
    harness.end(job)
    at_notice = len(voice.calls)
    time.sleep(1.5)  # 15 sentences' worth of time
    assert len(voice.calls) - at_notice <= 2, "the agent kept synthesizing a cancelled job"
    assert not any(e.type in ("completed", "failed") for e in harness.of(job.job_id))
    assert metrics.sample("tts_agent_jobs_total", {"length_class": "long", "outcome": "ended"}) == ended + 1
    assert redis.Redis.from_url(redis_url).get(claim_key(job_id=job.job_id, attempt=1)) is None  # released
    # A later delivery of the ended attempt is acked unsynthesized.
    calls = len(voice.calls)
    harness.publish("long", job)
    other = harness.job("Still served.", length_class="long")
    harness.publish("long", other)
    assert harness.wait_final(other.job_id).type == "completed"
    assert len(voice.calls) == calls + 1
    harness.agents[0].shutdown()
    assert harness.backlog("long") == []


def test_deliveries_that_keep_dying_fail_the_job_with_a_true_reason(harness: Harness, redis_url: str) -> None:
    voice = FakeVoice()
    job = harness.job(sentences_text(3))
    # Three earlier deliveries started and never ended: their agents died (out of memory, kill).
    previous = claims_for(redis_url, "dead-agent")
    for _ in range(3):
        previous.delivery_started(job.job_id, job.attempt)
    harness.start_agent(harness.config("short", max_attempts=3), voices=FakeVoices(voice))
    harness.agents[0].agent.claims = claims_for(redis_url, "agent-d")
    harness.publish("short", job)
    failed = harness.wait_final(job.job_id)
    assert isinstance(failed, FailedEvent) and failed.code == "agent_crashed_repeatedly"
    assert "3 times" in failed.reason and voice.calls == []
    # A delivery that ends normally does not count towards the limit.
    fine = harness.job(sentences_text(2, tag="ok"))
    claims = claims_for(redis_url, "other")
    claims.delivery_started(fine.job_id, fine.attempt)
    claims.delivery_ended(fine.job_id, fine.attempt, final=False)
    harness.publish("short", fine)
    assert harness.wait_final(fine.job_id).type == "completed"
    assert eventually(lambda: redis.Redis.from_url(redis_url).keys("tts:deliveries:*") == [])


def test_events_the_broker_refuses_fail_the_job_as_publish_failed(harness: Harness) -> None:
    """On the last delivery, a segment that cannot be published ends the job with a small `failed`
    event saying so, not with "synthesis failed after N attempts"."""
    running = harness.start_agent(harness.config("short", max_attempts=1))
    send = running.agent.broker.send

    def refuse_segments(events: Sequence[JobEvent]) -> None:
        if any(isinstance(event, SegmentEvent) for event in events):
            raise pulsar.Timeout("the broker did not confirm the segment")
        send(events)

    running.agent.broker.send = refuse_segments  # type: ignore[method-assign]
    job = harness.job(sentences_text(3))
    harness.publish("short", job)
    failed = harness.wait_final(job.job_id)
    assert isinstance(failed, FailedEvent) and failed.code == "publish_failed"
    assert "could not publish" in failed.reason and "synthesis failed" not in failed.reason.lower()
    running.shutdown()
    assert harness.backlog("short") == []


def test_a_claim_taken_over_while_frozen_is_renewed_by_nobody_else(redis_url: str) -> None:
    """Renewal keeps our claim, takes back an expired one, and reports a claim another agent took."""
    first, second = claims_for(redis_url, "agent-first", ttl_s=0.2), claims_for(redis_url, "agent-second")
    assert first.claim("job-frozen", 1) == "claimed"
    assert first.renew("job-frozen", 1) is True
    time.sleep(0.3)  # first is frozen past its expiry ...
    assert first.renew("job-frozen", 1) is True  # ... nobody took it: taken back
    time.sleep(0.3)
    assert second.claim("job-frozen", 1) == "claimed"  # the re-send reached another agent
    assert first.renew("job-frozen", 1) is False
    assert redis.Redis.from_url(redis_url).get(claim_key(job_id="job-frozen", attempt=1)) == b"agent-second"


def test_an_agent_whose_claim_was_taken_over_drops_the_job(harness: Harness, redis_url: str) -> None:
    voice = FakeVoice(delay_s=0.05)
    harness.start_agent(
        harness.config("long", agent_id="agent-frozen", heartbeat_interval_s=0.2),
        voices=FakeVoices(voice),
        claims=claims_for(redis_url, "agent-frozen"),
    )
    job = harness.job(sentences_text(200), length_class="long")
    harness.publish("long", job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == job.job_id for e in seen))
    # As if this agent had been frozen past its expiry and another agent had claimed the re-send.
    redis.Redis.from_url(redis_url).set(claim_key(job_id=job.job_id, attempt=1), "agent-other")
    time.sleep(1.5)  # several heartbeats: the first one after the takeover drops the job
    calls = len(voice.calls)
    time.sleep(1.0)
    assert len(voice.calls) == calls < 200  # stopped within a sentence, not resumed
    assert not any(e.type in ("completed", "failed") for e in harness.of(job.job_id))
    for running in harness.agents:
        running.shutdown()
    assert harness.backlog("long") == []  # acked: the holder finishes it, no redelivery here


def test_a_delivery_that_synthesizes_something_new_resets_the_crash_count(redis_url: str) -> None:
    """Agents killed while a long job moves on (each delivery replays the cache, then adds
    sentences) are not a crash loop; only deliveries that die without progress count."""
    claims = claims_for(redis_url, "agent-a")
    assert [claims.delivery_started("job-long", 1) for _ in range(3)] == [1, 2, 3]
    claims.delivery_progressed("job-long", 1)  # the third delivery synthesized new sentences, then died
    assert claims.delivery_started("job-long", 1) == 2
    claims.delivery_ended("job-long", 1, final=True)
    assert redis.Redis.from_url(redis_url).get("tts:deliveries:job-long:1") is None


def test_a_delivery_whose_holder_died_is_taken_up_once_the_claim_lapses(harness: Harness, redis_url: str) -> None:
    """The redelivery of a job whose holder died (claimed, never renewed again) is kept, not
    acked, and run once the claim expires: no wait for the gateway's watchdog."""
    voice = FakeVoice(delay_s=0.2)
    harness.start_agent(
        harness.config("short", agent_id="agent-survivor"),
        voices=FakeVoices(voice),
        claims=claims_for(redis_url, "agent-survivor", ttl_s=1.0),
    )
    job = harness.job(sentences_text(3))
    claimed = metrics.sample("tts_agent_claims_total", {"result": "claimed"})
    # Claimed by an agent that died a moment ago: nobody renews it, it lapses in 1.2 s.
    redis.Redis.from_url(redis_url).set(claim_key(job_id=job.job_id, attempt=1), "agent-dead", px=1200)
    began = time.monotonic()
    harness.publish("short", job)
    harness.publish("short", job)  # the broker's redelivery and a watchdog re-send: run once
    completed = harness.wait_final(job.job_id, timeout_s=20)
    assert completed.type == "completed" and completed.agent_id == "agent-survivor"
    assert 1.0 < time.monotonic() - began < 10.0  # after the claim's expiry, well before any watchdog
    assert {event.agent_id for event in harness.of(job.job_id)} == {"agent-survivor"}
    time.sleep(1.5)  # room for a second run, were the other delivery taken up too
    assert len(voice.calls) == 3
    assert [event.type for event in harness.of(job.job_id)].count("completed") == 1
    # One claim made it this agent's: the take-up neither claims nor counts it again.
    assert metrics.sample("tts_agent_claims_total", {"result": "claimed"}) == claimed + 1
    for running in harness.agents:
        running.shutdown()
    assert harness.backlog("short") == []
