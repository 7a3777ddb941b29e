"""Harness for agent integration tests: a real broker, unique topics per test, agents in threads."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pulsar
import pytest

from synthesis_agent.cache import NullCache, SentenceCache
from synthesis_agent.claims import Claims
from synthesis_agent.config import AgentConfig
from synthesis_agent.pipeline import VoiceSource
from synthesis_agent.worker import Agent
from tts_contracts import AGENT_SUBSCRIPTION, JobEnded, JobEvent, JobMessage, decode_events

from .fakes import FakeVoices

_agent_ids = itertools.count()


def delivered_once(events: list[JobEvent]) -> list[JobEvent]:
    """`events` without repeats of one message. pulsar-lite at times hands a message to a consumer
    twice (at-least-once, as Pulsar may): seen in CI as a first segment, and once as a long job's
    last segment, read twice. An event is its agent, attempt, seq and send time: an agent that
    published an event again, or ran the job again, sends it at another time, and the checks still
    see both."""
    seen: set[tuple[str, int, int, float]] = set()
    unique = []
    for event in events:
        key = (event.agent_id, event.attempt, event.seq, event.sent_at)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


@dataclass
class RunningAgent:
    agent: Agent
    stop: threading.Event
    thread: threading.Thread

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "agent did not stop"


@dataclass
class Harness:
    url: str
    prefix: str
    client: pulsar.Client
    events: pulsar.Consumer
    agents: list[RunningAgent] = field(default_factory=list)
    received: list[list[JobEvent]] = field(default_factory=list)  # the events of each message read
    _producers: dict[str, pulsar.Producer] = field(default_factory=dict)

    def config(self, classes: str = "short,medium,long", **overrides: object) -> AgentConfig:
        config = AgentConfig.from_env(
            {"PULSAR_URL": self.url, "TTS_TOPIC_PREFIX": self.prefix},
            classes=classes,
            agent_id=f"agent-{next(_agent_ids)}",
            metrics_port=0,
        )
        settings: dict[str, object] = {"retry_backoff_base_s": 0.1, "shutdown_grace_s": 2.0, **overrides}
        return dataclasses.replace(config, **settings)  # type: ignore[arg-type]

    def start_agent(
        self,
        config: AgentConfig | None = None,
        *,
        voices: VoiceSource | None = None,
        cache: SentenceCache | None = None,
        claims: Claims | None = None,
        operation_timeout_s: int = 10,
    ) -> RunningAgent:
        agent = Agent(
            config or self.config(),
            voices=voices or FakeVoices(),
            cache=cache or NullCache(),
            claims=claims,
            operation_timeout_s=operation_timeout_s,
        )
        agent.connect()
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), name=agent.config.agent_id, daemon=True)
        thread.start()
        running = RunningAgent(agent, stop, thread)
        self.agents.append(running)
        return running

    def topic(self, name: str) -> str:
        return f"persistent://public/default/{self.prefix}-{name}"

    def publish(self, queue: str, payload: JobMessage | bytes, *, key: str = "k") -> None:
        producer = self._producers.get(queue)
        if producer is None:
            producer = self._producers[queue] = self.client.create_producer(self.topic(f"jobs-{queue}"))
        data = payload.to_bytes() if isinstance(payload, JobMessage) else payload
        producer.send(data, partition_key=payload.job_id if isinstance(payload, JobMessage) else key)

    def end(self, job: JobMessage, status: str = "cancelled") -> None:
        """Tell every agent that the job's attempt is over, as the gateway does."""
        producer = self._producers.get("control")
        if producer is None:
            producer = self._producers["control"] = self.client.create_producer(self.topic("control"))
        producer.send(JobEnded(job_id=job.job_id, attempt=job.attempt, status=status).to_bytes())

    def job(self, text: str, *, length_class: str = "short", job_id: str | None = None, **params: object) -> JobMessage:
        return JobMessage(
            job_id=job_id or uuid.uuid4().hex,
            attempt=1,
            text=text,
            voice="",
            length_class=length_class,
            params=dict(params),
            submitted_at=time.time(),
        )

    def wait_for(self, done: Callable[[list[JobEvent]], bool], *, timeout_s: float = 30.0) -> list[JobEvent]:
        """Read events (all of them, kept in `seen`) until `done(seen)` or fail at the timeout."""
        deadline = time.monotonic() + timeout_s
        while not done(self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out waiting for events; saw {[(e.type, e.job_id[:6]) for e in self.seen]}")
            try:
                message = self.events.receive(timeout_millis=int(min(remaining, 0.5) * 1000) + 1)
            except pulsar.Timeout:
                continue
            self.events.acknowledge(message)
            self.received.append(decode_events(message.data()))
        return self.seen

    @property
    def seen(self) -> list[JobEvent]:
        """Every event read so far, in arrival order."""
        return [event for events in self.received for event in events]

    def wait_final(self, job_id: str, *, timeout_s: float = 30.0) -> JobEvent:
        def final(events: list[JobEvent]) -> bool:
            return any(e.job_id == job_id and e.type in ("completed", "failed") for e in events)

        self.wait_for(final, timeout_s=timeout_s)
        return next(e for e in self.seen if e.job_id == job_id and e.type in ("completed", "failed"))

    def of(self, job_id: str) -> list[JobEvent]:
        """The job's events in arrival order, each message once: see `delivered_once`."""
        return delivered_once([event for event in self.seen if event.job_id == job_id])

    def messages_of(self, job_id: str) -> list[list[str]]:
        """The types of the job's events, message by message, each message once."""
        once = {id(event) for event in self.of(job_id)}
        messages = ([event.type for event in events if id(event) in once] for events in self.received)
        return [types for types in messages if types]

    def backlog(self, queue: str, *, wait_ms: int = 1500) -> list[bytes]:
        """Messages still unacked on a job queue (read as the agents' subscription; then released)."""
        consumer = self.client.subscribe(
            self.topic(f"jobs-{queue}"),
            AGENT_SUBSCRIPTION,
            consumer_type=pulsar.ConsumerType.Shared,
            receiver_queue_size=1,
            initial_position=pulsar.InitialPosition.Earliest,
        )
        found: list[bytes] = []
        try:
            while True:
                found.append(consumer.receive(timeout_millis=wait_ms).data())
        except pulsar.Timeout:
            pass
        consumer.close()
        return found


@pytest.fixture
def harness(pulsar_url: str) -> Iterator[Harness]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    client = pulsar.Client(pulsar_url, logger=_quiet_logger(), operation_timeout_seconds=10)
    events = client.subscribe(
        f"persistent://public/default/{prefix}-events",
        "test-reader",
        consumer_type=pulsar.ConsumerType.Exclusive,
        initial_position=pulsar.InitialPosition.Earliest,
    )
    harness = Harness(url=pulsar_url, prefix=prefix, client=client, events=events)
    try:
        yield harness
    finally:
        for running in harness.agents:
            running.stop.set()
        for running in harness.agents:
            running.thread.join(30)
        client.close()


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("pulsar.test")
    logger.setLevel(logging.WARNING)
    return logger
