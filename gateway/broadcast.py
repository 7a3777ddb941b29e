"""A best-effort, ordered, non-blocking producer for one topic (live notices, public results).

Sends run on one background thread per topic, so a request or the consumer loop never waits
for the broker, and messages leave in the order they were handed over. After a failure the
topic is skipped for `BACKOFF_S` (messages dropped and logged): these topics are
notifications and a copy of what the database holds, never the source of truth.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pulsar

from tts_runtime import pulsar_client

logger = logging.getLogger(__name__)

BACKOFF_S = 5.0


def broker_reachable(service_url: str, *, timeout_s: float = 0.5) -> bool:
    """Whether the first broker address of `service_url` accepts TCP connections.

    Checked before a pulsar client is built: a client whose connection attempts time out was
    seen to abort the interpreter when closed during shutdown, and the check fails fast.
    """
    address = urlsplit(service_url.split(",")[0])
    default_port = 6651 if address.scheme.endswith("+ssl") else 6650
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or default_port), timeout_s):
            return True
    except OSError:
        return False


class Broadcaster:
    def __init__(self, *, name: str, chunking: bool = False) -> None:
        self.name = name
        self.chunking = chunking
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"broadcast-{name}")
        self._lock = threading.Lock()
        self._client: pulsar.Client | None = None
        self._producer: pulsar.Producer | None = None
        self._key: tuple[str, str] | None = None
        self._skip_until = 0.0

    def send(
        self, *, service_url: str, topic: str, payload: bytes, partition_key: str, auth_token: str | None = None
    ) -> None:
        """Queue one message; returns at once."""
        if time.monotonic() < self._skip_until:
            logger.debug("%s: broker unreachable recently; message for %s dropped", self.name, partition_key)
            return
        self._executor.submit(self._send, service_url, topic, payload, partition_key, auth_token)

    def _send(self, service_url: str, topic: str, payload: bytes, partition_key: str, auth_token: str | None) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            if self._producer is None and not broker_reachable(service_url):
                raise ConnectionError(f"nothing accepts connections at {service_url}")
            producer = self._producer_for(service_url, topic, auth_token)
            producer.send_async(payload, callback=self._sent, partition_key=partition_key)
        except Exception as error:
            self._skip_until = time.monotonic() + BACKOFF_S
            logger.warning("%s: message for %s not sent to %s: %s", self.name, partition_key, topic, error)
            self.close()

    def _sent(self, result: object, message_id: object) -> None:
        if result != pulsar.Result.Ok:
            logger.warning("%s: message not confirmed by the broker: %s", self.name, result)

    def _producer_for(self, service_url: str, topic: str, auth_token: str | None) -> pulsar.Producer:
        with self._lock:
            if self._producer is None or self._key != (service_url, topic):
                self._close_locked()
                self._client = pulsar_client(service_url, timeout_s=5.0, auth_token=auth_token)
                self._producer = self._client.create_producer(
                    topic,
                    batching_enabled=False,
                    chunking_enabled=self.chunking,
                    send_timeout_millis=10_000,
                    block_if_queue_full=True,
                )
                self._key = (service_url, topic)
            return self._producer

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued message was handed to the broker (tests, shutdown)."""
        self._executor.submit(lambda: None).result(timeout=timeout_s)
        with self._lock:
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    self._producer.flush()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        client, self._client, self._producer, self._key = self._client, None, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
