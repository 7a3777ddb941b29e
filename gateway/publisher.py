"""One pulsar.Client per process, one producer per topic, created lazily and thread-safely.

`send` blocks until the broker confirms or `TTS_PUBLISH_TIMEOUT_S` passes. After a failure
the request path skips the broker for `TTS_PUBLISH_BACKOFF_S` (the outbox relay publishes
later), so a broker outage does not slow every submit down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import pulsar
from django.conf import settings

from tts_contracts import Topics, job_topic_for
from tts_runtime import pulsar_client

logger = logging.getLogger(__name__)


def service_topics() -> Topics:
    """The service's topic names from settings (read at call time, so tests can override them)."""
    return Topics(tenant=settings.PULSAR_TENANT, namespace=settings.PULSAR_NAMESPACE, prefix=settings.TTS_TOPIC_PREFIX)


def job_topic(*, length_class: str, voice: str) -> str:
    """The topic a job goes to: its class's (`-jobs-fifo` in fifo scheduling), per voice for a dedicated voice."""
    return job_topic_for(
        service_topics(),
        length_class=length_class,
        scheduling=settings.TTS_SCHEDULING,
        voice=voice,
        dedicated_voices=settings.TTS_DEDICATED_VOICES,
    )


class PublishError(Exception):
    """The broker did not confirm the message (down, timeout, or skipped during backoff)."""


class Publisher:
    def __init__(self, *, service_url: str, timeout_s: float) -> None:
        self.service_url = service_url
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._client: pulsar.Client | None = None
        self._producers: dict[str, pulsar.Producer] = {}
        self._skip_until = 0.0

    def _producer(self, topic: str) -> pulsar.Producer:
        with self._lock:
            producer = self._producers.get(topic)
            if producer is not None:
                return producer
            if self._client is None:
                self._client = pulsar_client(
                    self.service_url, timeout_s=self.timeout_s, auth_token=settings.PULSAR_AUTH_TOKEN
                )
            producer = self._client.create_producer(
                topic,
                send_timeout_millis=int(self.timeout_s * 1000),
                block_if_queue_full=True,
                batching_enabled=False,  # one job per message, confirmed one by one
            )
            self._producers[topic] = producer
            return producer

    def _drop(self, topic: str) -> None:
        """Forget a producer that failed, so the next send builds a fresh one."""
        with self._lock:
            producer = self._producers.pop(topic, None)
        if producer is not None:
            with contextlib.suppress(Exception):  # already broken; nothing to release
                producer.close()

    def send(self, *, topic: str, payload: bytes, partition_key: str, respect_backoff: bool = False) -> None:
        if respect_backoff and time.monotonic() < self._skip_until:
            raise PublishError("broker recently unreachable; left to the outbox relay")
        try:
            self._producer(topic).send(payload, partition_key=partition_key)
        except Exception as error:  # pulsar raises its own exception types, all mean "not confirmed"
            self._skip_until = time.monotonic() + settings.TTS_PUBLISH_BACKOFF_S
            self._drop(topic)
            raise PublishError(f"{type(error).__name__}: {error}") from error
        self._skip_until = 0.0

    def close(self) -> None:
        with self._lock:
            producers, self._producers = list(self._producers.values()), {}
            client, self._client = self._client, None
        for producer in producers:
            with contextlib.suppress(Exception):
                producer.close()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


_publisher: Publisher | None = None
_publisher_pid: int | None = None
_publisher_lock = threading.Lock()


def get_publisher() -> Publisher:
    """The process's publisher; rebuilt after a fork (gunicorn) or a PULSAR_URL change (tests)."""
    global _publisher, _publisher_pid
    with _publisher_lock:
        stale = _publisher is not None and (
            _publisher_pid != os.getpid()
            or _publisher.service_url != settings.PULSAR_URL
            or _publisher.timeout_s != settings.TTS_PUBLISH_TIMEOUT_S
        )
        if stale and _publisher_pid == os.getpid():
            _publisher.close()  # type: ignore[union-attr]
        if _publisher is None or stale:
            _publisher = Publisher(service_url=settings.PULSAR_URL, timeout_s=settings.TTS_PUBLISH_TIMEOUT_S)
            _publisher_pid = os.getpid()
        return _publisher


def close_publisher() -> None:
    global _publisher
    with _publisher_lock:
        if _publisher is not None and _publisher_pid == os.getpid():
            _publisher.close()
        _publisher = None
