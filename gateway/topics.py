"""Topic names from settings (docs/CONTRACTS.md), read at call time so tests can override them."""

from __future__ import annotations

from django.conf import settings

from synthesis_agent.protocol import LENGTH_CLASSES

EVENTS_SUBSCRIPTION = "tts-gateway"
DLQ_SUBSCRIPTION = "tts-gateway-dlq"


def topic_name(name: str) -> str:
    return f"persistent://{settings.PULSAR_TENANT}/{settings.PULSAR_NAMESPACE}/{settings.TTS_TOPIC_PREFIX}-{name}"


def job_topic(*, length_class: str) -> str:
    """The topic a job of this class is published to; every job goes to `-jobs-fifo` in fifo mode."""
    if settings.TTS_SCHEDULING == "fifo":
        return topic_name("jobs-fifo")
    return topic_name(f"jobs-{length_class}")


def events_topic() -> str:
    return topic_name("events")


def dead_letter_topics() -> list[str]:
    """Every dead-letter topic an agent may write to, fifo included (the mode can change)."""
    return [topic_name(f"jobs-{name}-dlq") for name in (*LENGTH_CLASSES, "fifo")]
