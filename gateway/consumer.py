"""The event consumer loop: receive, apply through the services, ack or negative-ack.

Broker plumbing only. What an event means lives in `services.job_apply_event` and
`services.job_fail_dead_letter`, which know nothing of Pulsar (as Zulip's workers are
separate from `QueueProcessingWorker`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import pulsar
from django.db import DatabaseError, close_old_connections, connections

from synthesis_agent.protocol import JobEvent, JobMessage, ProtocolError

from . import metrics, results, services
from .topics import DLQ_SUBSCRIPTION, EVENTS_SUBSCRIPTION, dead_letter_topics, events_topic

logger = logging.getLogger(__name__)

# A `completed` whose segments are missing is redelivered this many times (the segments may
# still be on their way after a negative ack) before the job is failed as incomplete.
MAX_COMPLETED_REDELIVERIES = 5
NACK_DELAY_MS = 1000
DB_ERROR_PAUSE_S = 1.0


class EventConsumer:
    def __init__(self, *, service_url: str, receive_timeout_ms: int = 200) -> None:
        self.service_url = service_url
        self.receive_timeout_ms = receive_timeout_ms
        self._client: pulsar.Client | None = None
        self._events: pulsar.Consumer | None = None
        self._dead_letters: pulsar.Consumer | None = None

    def open(self) -> EventConsumer:
        self._client = pulsar.Client(self.service_url, logger=logging.getLogger("pulsar"), operation_timeout_seconds=10)
        common = {
            "receiver_queue_size": 50,  # events carry audio: no deep prefetch
            "negative_ack_redelivery_delay_ms": NACK_DELAY_MS,
            # A fresh subscription must still see events published before it existed.
            "initial_position": pulsar.InitialPosition.Earliest,
        }
        # Failover: one active consumer, so each job's events are applied in order.
        self._events = self._client.subscribe(
            events_topic(), EVENTS_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Failover, **common
        )
        self._dead_letters = self._client.subscribe(
            dead_letter_topics(), DLQ_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Failover, **common
        )
        logger.info("consuming %s and %s from %s", events_topic(), ", ".join(dead_letter_topics()), self.service_url)
        return self

    def close(self) -> None:
        for consumer in (self._events, self._dead_letters):
            if consumer is not None:
                try:
                    consumer.close()
                except Exception:
                    logger.debug("consumer close failed", exc_info=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        results.close()
        self._client = self._events = self._dead_letters = None

    def run(self, *, stop: threading.Event, max_seconds: float | None = None) -> None:
        """Poll both subscriptions until `stop` is set (or `max_seconds` pass)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        assert self._events is not None and self._dead_letters is not None, "call open() first"
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            self._poll(self._events, self.handle_event, timeout_ms=self.receive_timeout_ms)
            # Dead letters are rare: a short poll keeps events flowing.
            while self._poll(self._dead_letters, self.handle_dead_letter, timeout_ms=10):
                pass
        close_old_connections()

    def _poll(self, consumer: pulsar.Consumer, handle: Callable[[pulsar.Message], bool], *, timeout_ms: int) -> bool:
        try:
            message = consumer.receive(timeout_millis=timeout_ms)
        except pulsar.Timeout:
            return False
        if handle(message):
            consumer.acknowledge(message)
        else:
            consumer.negative_acknowledge(message)
        return True

    # --- one message each; True = ack, False = negative-ack ----------------------------------

    def handle_event(self, message: pulsar.Message) -> bool:
        try:
            event = JobEvent.from_bytes(message.data())
        except ProtocolError as error:
            logger.error("undecodable event %s dropped: %s", message.message_id(), error)
            metrics.EVENTS_APPLIED.labels(type="unknown", result=services.INVALID).inc()
            return True  # a poison message must not block the subscription
        redeliveries = message.redelivery_count()
        return self._apply(
            lambda: services.job_apply_event(event=event, wait_for_segments=redeliveries < MAX_COMPLETED_REDELIVERIES),
            what=f"{event.type} event seq {event.seq} of job {event.job_id} attempt {event.attempt}",
            on_result=lambda result: results.event_applied(event=event, result=result),
        )

    def handle_dead_letter(self, message: pulsar.Message) -> bool:
        try:
            job_message = JobMessage.from_bytes(message.data())
        except ProtocolError as error:
            logger.error("undecodable dead letter on %s dropped: %s", message.topic_name(), error)
            return True
        return self._apply(
            lambda: services.job_fail_dead_letter(message=job_message),
            what=f"dead letter of job {job_message.job_id} attempt {job_message.attempt}",
            on_result=lambda result: results.dead_letter_applied(job_id=job_message.job_id, result=result),
        )

    def _apply(self, apply: Callable[[], str], *, what: str, on_result: Callable[[str], None] | None = None) -> bool:
        close_old_connections()
        try:
            result = apply()
        except services.EventNotReadyError as error:
            logger.info("%s not applicable yet, redelivering: %s", what, error)
            return False
        except DatabaseError:
            logger.exception("database error applying %s; negative-ack and reconnect", what)
            connections.close_all()
            time.sleep(DB_ERROR_PAUSE_S)  # don't spin through the backlog while the database is down
            return False
        except Exception:
            logger.exception("unexpected error applying %s; negative-ack", what)
            return False
        logger.debug("%s: %s", what, result)
        if on_result is not None:
            on_result(result)  # results topic and live updates (best effort, never raises)
        return True


def start_metrics_server(*, port: int) -> None:
    """Serve this process's metrics (prometheus_client's default registry) on `port`."""
    from prometheus_client import start_http_server

    start_http_server(port)
    logger.info("metrics on :%d/metrics", port)
    metrics.OUTBOX_BACKLOG.set(0)  # exported from the start, set by the relay thread
