"""Topic and subscription names, built in one place for both processes (docs/CONTRACTS.md)."""

from __future__ import annotations

from dataclasses import dataclass

from . import defaults
from .classes import FIFO_QUEUE, LENGTH_CLASSES

# Agents share one subscription per job topic: each message goes to one agent.
AGENT_SUBSCRIPTION = "tts-agents"
# The gateway's event consumer: events in order (Failover), and the dead letters of every queue.
EVENTS_SUBSCRIPTION = "tts-gateway"
DEAD_LETTER_SUBSCRIPTION = "tts-gateway-dlq"

JOB_QUEUES: tuple[str, ...] = (*LENGTH_CLASSES, FIFO_QUEUE)


@dataclass(frozen=True)
class Topics:
    """`persistent://{tenant}/{namespace}/{prefix}-{name}` for every topic the service uses."""

    tenant: str = defaults.PULSAR_TENANT
    namespace: str = defaults.PULSAR_NAMESPACE
    prefix: str = defaults.TOPIC_PREFIX

    def topic(self, name: str) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.prefix}-{name}"

    def job_topic(self, queue: str) -> str:
        """The job topic of a length class, or of the single `fifo` queue."""
        return self.topic(f"jobs-{queue}")

    def dead_letter_topic(self, queue: str) -> str:
        return self.topic(f"jobs-{queue}-dlq")

    def dead_letter_topics(self) -> list[str]:
        """Every dead-letter topic an agent may write to, fifo included (the mode can change)."""
        return [self.dead_letter_topic(queue) for queue in JOB_QUEUES]

    @property
    def events_topic(self) -> str:
        return self.topic("events")

    @property
    def control_topic(self) -> str:
        """Gateway -> agents: `JobEnded` notices. Every agent reads all of them (own subscription)."""
        return self.topic("control")


def job_queue(*, length_class: str, scheduling: str) -> str:
    """The queue a job of `length_class` goes to: its own class, or `fifo` in fifo scheduling."""
    return FIFO_QUEUE if scheduling == "fifo" else length_class
