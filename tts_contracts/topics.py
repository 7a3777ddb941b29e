"""Topic and subscription names, built in one place for both processes (docs/CONTRACTS.md)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from . import defaults
from .classes import FIFO_QUEUE, LENGTH_CLASSES
from .fields import ContractError

# Agents share one subscription per job topic: each message goes to one agent.
AGENT_SUBSCRIPTION = "tts-agents"
# The gateway's event consumer: events in order (Failover), and the dead letters of every queue.
EVENTS_SUBSCRIPTION = "tts-gateway"
DEAD_LETTER_SUBSCRIPTION = "tts-gateway-dlq"

JOB_QUEUES: tuple[str, ...] = (*LENGTH_CLASSES, FIFO_QUEUE)

# Voices with their own agent pool: their jobs go to `{prefix}-jobs-{queue}-{voice}`, read only by
# agents started with `--voice`; every other voice stays on the shared `{prefix}-jobs-{queue}`.
DEDICATED_VOICES_SETTING = "TTS_DEDICATED_VOICES"
# A voice id becomes part of a topic name (and of KEDA's admin-API URL): letters, digits, `_ . -`.
_TOPIC_SAFE_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# `jobs-short-dlq` is the dead-letter topic; Pulsar reserves `-partition-N` for partitions.
_RESERVED_VOICE_IDS = frozenset({"dlq"})
MAX_VOICE_ID_IN_TOPIC = 100


@dataclass(frozen=True)
class Topics:
    """`persistent://{tenant}/{namespace}/{prefix}-{name}` for every topic the service uses."""

    tenant: str = defaults.PULSAR_TENANT
    namespace: str = defaults.PULSAR_NAMESPACE
    prefix: str = defaults.TOPIC_PREFIX

    def topic(self, name: str) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.prefix}-{name}"

    def job_topic(self, queue: str, voice: str | None = None) -> str:
        """The job topic of a length class (or the single `fifo` queue): shared, or a dedicated voice's."""
        if voice is None:
            return self.topic(f"jobs-{queue}")
        return self.topic(f"jobs-{queue}-{check_voice_topic_part(voice)}")

    def dead_letter_topic(self, queue: str) -> str:
        """Where the broker moves a message of `queue` delivered too often, from shared and voice topics alike."""
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


def check_voice_topic_part(voice: str) -> str:
    """`voice` if it can be part of a topic name; ContractError naming TTS_DEDICATED_VOICES otherwise."""
    if not _TOPIC_SAFE_VOICE.match(voice) or len(voice) > MAX_VOICE_ID_IN_TOPIC:
        raise ContractError(
            f"{DEDICATED_VOICES_SETTING}: voice id {voice!r} cannot be part of a topic name "
            f"(letters, digits, '_', '.', '-', starting with a letter or digit, at most {MAX_VOICE_ID_IN_TOPIC})"
        )
    if voice.lower() in _RESERVED_VOICE_IDS or "-partition-" in voice:
        raise ContractError(f"{DEDICATED_VOICES_SETTING}: voice id {voice!r} would collide with a reserved topic name")
    return voice


def parse_dedicated_voices(text: str) -> frozenset[str]:
    """`"en_US-joe-medium, de_DE-x-low"` -> the voice ids, each checked as a topic-name part; "" -> none."""
    return frozenset(check_voice_topic_part(part.strip()) for part in text.split(",") if part.strip())


def job_topic_for(
    topics: Topics, *, length_class: str, scheduling: str, voice: str, dedicated_voices: Collection[str]
) -> str:
    """The topic a job is published to: its voice's own topic when the voice has a pool, else the shared one."""
    queue = job_queue(length_class=length_class, scheduling=scheduling)
    return topics.job_topic(queue, voice if voice in dedicated_voices else None)


def every_job_topic(topics: Topics, dedicated_voices: Iterable[str]) -> list[str]:
    """Every topic a job may wait on, shared and per voice, fifo included (the agents' subscriptions)."""
    voices: list[str | None] = [None, *sorted(dedicated_voices)]
    return [topics.job_topic(queue, voice) for voice in voices for queue in JOB_QUEUES]
