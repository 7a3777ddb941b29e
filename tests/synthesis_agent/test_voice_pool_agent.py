"""An agent of a voice pool (`--voice`) on the real broker and Redis: it reads only its voice's
topics, and everything keyed by job or class works there as on the shared topics: priority and
preemption between its classes, heartbeats of a paused job, claims, and control notices."""

from __future__ import annotations

import dataclasses

import pytest

from synthesis_agent import metrics
from synthesis_agent.claims import RedisClaims
from tts_contracts import HeartbeatEvent

from .conftest import Harness
from .fakes import FakeVoice, FakeVoices, sentences_text
from .test_worker_integration import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

POOL_VOICE = "en_GB-extra-medium"


def test_a_voice_pool_agent_preempts_heartbeats_claims_and_obeys_control_on_its_topics(
    harness: Harness, redis_url: str
) -> None:
    voice = FakeVoice(delay_s=0.05)
    # Inline steps, so the long job is paused by the short one (background steps run on).
    config = dataclasses.replace(
        harness.config("short,long", heartbeat_interval_s=0.3, background_nice=0), voice=POOL_VOICE
    )
    running = harness.start_agent(
        config, voices=FakeVoices(voice), claims=RedisClaims(redis_url, agent_id=config.agent_id, ttl_s=5.0)
    )
    assert set(running.agent.broker.consumers) == {"short", "long"}
    assert config.job_topic("long") == harness.topic(f"jobs-long-{POOL_VOICE}")
    ended = metrics.sample("tts_agent_jobs_total", {"length_class": "long", "outcome": "ended"})
    claimed = metrics.sample("tts_agent_claims_total", {"result": "claimed"})

    # A shared-topic job is not this agent's: it stays on the shared topic.
    shared = harness.job("Not for the pool.")
    harness.publish("short", shared)
    long_job = harness.job(sentences_text(80, tag="L"), length_class="long")
    harness.publish(f"long-{POOL_VOICE}", long_job)
    harness.wait_for(lambda seen: any(e.type == "segment" and e.job_id == long_job.job_id for e in seen))
    short_job = harness.job(sentences_text(20, tag="S"))
    harness.publish(f"short-{POOL_VOICE}", short_job)

    def paused_beat(seen: list) -> bool:  # type: ignore[type-arg]
        return any(isinstance(e, HeartbeatEvent) and e.job_id == long_job.job_id and e.paused for e in seen)

    harness.wait_for(paused_beat, timeout_s=20)  # preempted by the short job, still held
    assert harness.wait_final(short_job.job_id).type == "completed"
    harness.end(long_job)  # the gateway cancels it: the agent drops it within a sentence
    assert eventually(
        lambda: metrics.sample("tts_agent_jobs_total", {"length_class": "long", "outcome": "ended"}) == ended + 1,
        timeout_s=20,
    )
    assert not any(e.job_id == long_job.job_id and e.type == "completed" for e in harness.seen)
    assert {e.agent_id for e in harness.seen} == {config.agent_id}
    assert not harness.of(shared.job_id)
    assert metrics.sample("tts_agent_claims_total", {"result": "claimed"}) == claimed + 2  # both jobs, in Redis
    running.shutdown()
    assert harness.backlog(f"long-{POOL_VOICE}") == [] and harness.backlog(f"short-{POOL_VOICE}") == []
    assert len(harness.backlog("short")) == 1  # the shared job waits for a shared agent
