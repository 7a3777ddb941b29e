"""The event consumer loop: receive, apply through the services, ack or negative-ack.

Broker plumbing only. What an event means lives in `services.job_apply_event` and
`services.job_fail_dead_letter`, which know nothing of Pulsar and are tested without a broker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pulsar
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction

from tts_contracts import (
    DEAD_LETTER_SUBSCRIPTION,
    EVENT_TYPES,
    EVENTS_SUBSCRIPTION,
    ContractError,
    JobEvent,
    JobMessage,
    SegmentEvent,
    StartedEvent,
    decode_events,
)
from tts_contracts.messages import EVENTS_MESSAGE_TYPE
from tts_runtime import pulsar_client

from . import live, metrics, results, services
from .publisher import service_topics

logger = logging.getLogger(__name__)

NACK_DELAY_MS = 1000
DB_ERROR_PAUSE_S = 1.0
# Events already waiting in the receiver queue are applied together, in one transaction (at
# most this many): no added latency when events trickle in, fewer commits under a burst.
MAX_EVENT_BATCH = 32
# A batch that ends with a `started` or a segment waits this long for one more message: an agent
# sends a step's events in one message (a short job's `started`, segment and `completed`), but one
# of an older version sent them one confirmation round trip apart, and applied together they take
# one transaction and the segment goes straight into the WAV (never stored, read back and
# deleted). Any message ends the wait at once; a long job's other segments are committed at most
# this much later.
EVENT_LINGER_MS = 25
LINGER_AFTER = (StartedEvent, SegmentEvent)
# How often the loop drops connections past CONN_MAX_AGE (each check also costs the next
# query a health check round trip); after a database error they are closed at once anyway.
CONNECTION_CHECK_INTERVAL_S = 1.0
# The result label of an event whose payload broke the wire contract (acked, never applied).
REJECTED = "rejected"


# A received message, its payload and its events (None: the payload broke the contract; acked, logged).
Decoded = tuple[pulsar.Message, bytes, list[JobEvent] | None]


def _claimed(payload: bytes) -> tuple[str, str]:
    """The kind and job a rejected payload claims, for the metric label and the log only."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and data.get("type") == EVENTS_MESSAGE_TYPE:
        events = data.get("events")
        data = events[0] if isinstance(events, list) and events else None  # several: as the first claims
    if not isinstance(data, dict):
        return "unknown", "?"
    kind = data.get("type")
    kind = kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"  # bounded label values
    return kind, repr(data.get("job_id"))[:80]


class EventConsumer:
    def __init__(self, *, service_url: str, receive_timeout_ms: int = 200) -> None:
        self.service_url = service_url
        self.receive_timeout_ms = receive_timeout_ms
        self._client: pulsar.Client | None = None
        self._events: pulsar.Consumer | None = None
        self._dead_letters: pulsar.Consumer | None = None
        self._connections_checked_at = float("-inf")

    def open(self) -> EventConsumer:
        self._client = pulsar_client(self.service_url, auth_token=settings.PULSAR_AUTH_TOKEN)
        topics = service_topics()
        common = {
            "receiver_queue_size": 50,  # events carry audio: no deep prefetch
            "negative_ack_redelivery_delay_ms": NACK_DELAY_MS,
            # A fresh subscription must still see events published before it existed.
            "initial_position": pulsar.InitialPosition.Earliest,
        }
        # Failover: one active consumer, so each job's events are applied in order.
        self._events = self._client.subscribe(
            topics.events_topic, EVENTS_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Failover, **common
        )
        self._dead_letters = self._client.subscribe(
            topics.dead_letter_topics(), DEAD_LETTER_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Failover, **common
        )
        logger.info(
            "consuming %s and %s from %s",
            topics.events_topic,
            ", ".join(topics.dead_letter_topics()),
            self.service_url,
        )
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
            batch = self._receive_waiting(self._events, timeout_ms=self.receive_timeout_ms)
            if batch:
                self._settle(self._events, [message for message, _, _ in batch], self._handle_decoded(batch))
            # Dead letters are rare: a poll that never waits keeps events flowing (a 10 ms wait here
            # cost every event 10 ms, a ceiling of ~100 events/s under a burst of small jobs).
            while self._poll(self._dead_letters, self.handle_dead_letter, timeout_ms=0):
                pass
        close_old_connections()

    def _receive_waiting(self, consumer: pulsar.Consumer, *, timeout_ms: int) -> list[Decoded]:
        """The next message (waiting up to `timeout_ms`), then those already received behind it,
        each with its event (None: undecodable); after a `started` or a segment, one more within
        EVENT_LINGER_MS."""
        batch: list[Decoded] = []
        wait_ms, lingering = timeout_ms, False
        while len(batch) < MAX_EVENT_BATCH:
            try:
                message = consumer.receive(timeout_millis=wait_ms)
            except pulsar.Timeout:
                if batch and not lingering and (events := batch[-1][2]) and isinstance(events[-1], LINGER_AFTER):
                    wait_ms, lingering = EVENT_LINGER_MS, True
                    continue
                break
            batch.append(self._with_event(message))
            wait_ms, lingering = 0, False
        return batch

    @staticmethod
    def _settle(consumer: pulsar.Consumer, messages: list[pulsar.Message], acks: list[bool]) -> None:
        for message, ack in zip(messages, acks, strict=True):
            if ack:
                consumer.acknowledge(message)
            else:
                consumer.negative_acknowledge(message)

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
        return self.handle_events([message])[0]

    def handle_events(self, messages: list[pulsar.Message]) -> list[bool]:
        """Apply events in order; one ack (True) or negative-ack (False) per message.

        Several events go through one transaction (fewer commits and round trips under a
        burst); if that transaction fails, each event is applied on its own, with the retries
        and dead letters of a single event, so one bad event never holds back the others.
        """
        return self._handle_decoded([self._with_event(message) for message in messages])

    def _with_event(self, message: pulsar.Message) -> Decoded:
        payload = message.data()
        return message, payload, self._decoded(message, payload)

    def _handle_decoded(self, batch: list[Decoded]) -> list[bool]:
        acks = [True] * len(batch)
        # (message index, event, the message's bytes when the event came alone in it)
        decoded: list[tuple[int, JobEvent, bytes | None]] = []
        for index, (_, payload, events) in enumerate(batch):
            alone = events is not None and len(events) == 1
            decoded += [(index, event, payload if alone else None) for event in events or ()]
        if len(decoded) > 1 and self._apply_together([event for _, event, _ in decoded]):
            return acks
        for index, event, own_payload in decoded:
            # After a negative-ack the message's later events wait for its redelivery, in order.
            # A dead letter keeps the event's own bytes, not those of the message it came in:
            # encoded here, off the path of a batch that applied (the audio's base64 again).
            if acks[index]:
                acks[index] = self._apply_one(event, event.to_bytes() if own_payload is None else own_payload)
        return acks

    @staticmethod
    def _decoded(message: pulsar.Message, payload: bytes) -> list[JobEvent] | None:
        try:
            return decode_events(payload)
        except ContractError as error:
            # Acked: a payload that breaks the contract never becomes valid by redelivery, and a
            # poison message must not block the subscription.
            kind, job_id = _claimed(payload)
            metrics.EVENTS_APPLIED.labels(type=kind, result=REJECTED).inc()
            logger.error(
                "rejected %s event %s on %s (%d bytes, job %s): %s",
                kind,
                message.message_id(),
                message.topic_name(),
                len(payload),
                job_id,
                error,
            )
            return None

    def _apply_together(self, events: list[JobEvent]) -> bool:
        """All of `events` in one transaction; False (nothing applied) if it failed.

        Each event's results hook is registered on commit right after the event, so hooks run in
        event order after the commit, a job's segments before its final result. The job's open
        streams get one live notice per batch (a notice only says "look again"), not one per event
        nor a second for its end (the hooks between the first event's and the last event's
        coalesce notices). Events of a job that repeat within the batch see the earlier ones
        (duplicates).
        """
        self._refresh_connections()
        changed_jobs: dict[str, None] = {}  # in order of first change; read after the commit
        registered = 0

        def notify_changed_jobs() -> None:
            for job_id in changed_jobs:
                live.notify_job_update(job_id=job_id)

        def publish_on_commit(event: JobEvent, result: str) -> None:
            nonlocal registered
            if registered == 0:
                transaction.on_commit(live.coalescing_start, robust=True)
            if not changed_jobs and result == services.APPLIED:  # registered once, in the transaction
                transaction.on_commit(notify_changed_jobs, robust=True)
            transaction.on_commit(partial(results.event_applied, event=event, result=result, notify=False), robust=True)
            if result == services.APPLIED:
                changed_jobs[event.job_id] = None
            registered += 1
            if registered == len(events):  # after every hook an event of the batch registered
                transaction.on_commit(live.coalescing_stop, robust=True)

        try:
            services.job_apply_events(events=events, on_applied=publish_on_commit)
        except Exception as error:  # retried one by one, each with its own retries and dead letter
            logger.warning("a batch of %d events failed (%s); applying them one by one", len(events), error)
            if isinstance(error, DatabaseError):
                connections.close_all()
            return False
        finally:
            live.coalescing_stop()  # hooks that stopped short (one raised) leave no coalescing behind
        return True

    def _apply_one(self, event: JobEvent, payload: bytes) -> bool:
        return self._apply(
            lambda: services.job_apply_event(event=event),
            what=f"{event.type} event seq {event.seq} of job {event.job_id} attempt {event.attempt}",
            on_result=lambda result: results.event_applied(event=event, result=result),
            dead_letter={
                "payload": payload,
                "event_type": event.type,
                "job_id": event.job_id,
                "attempt": event.attempt,
            },
        )

    def _refresh_connections(self) -> None:
        """Drop connections past CONN_MAX_AGE or left broken, at most every few moments."""
        now = time.monotonic()
        if now - self._connections_checked_at >= CONNECTION_CHECK_INTERVAL_S:
            self._connections_checked_at = now
            close_old_connections()

    def handle_dead_letter(self, message: pulsar.Message) -> bool:
        payload = message.data()
        try:
            job_message = JobMessage.from_bytes(payload)
        except ContractError as error:
            metrics.EVENTS_APPLIED.labels(type="dead_letter", result=REJECTED).inc()
            logger.error("rejected dead letter %s on %s: %s", message.message_id(), message.topic_name(), error)
            return True
        return self._apply(
            lambda: services.job_fail_dead_letter(message=job_message),
            what=f"dead letter of job {job_message.job_id} attempt {job_message.attempt}",
            dead_letter={
                "payload": payload,
                "event_type": "dead_letter",
                "job_id": job_message.job_id,
                "attempt": job_message.attempt,
            },
        )

    def _apply(
        self,
        apply: Callable[[], str],
        *,
        what: str,
        dead_letter: dict[str, Any],
        on_result: Callable[[str], None] | None = None,
    ) -> bool:
        """Apply with local retries; what still fails becomes an `EventDeadLetter` and is acked.

        `on_result` runs after a successful apply, whose transaction has committed by then: the
        results topic and the live notices (best effort, never raises).
        Never relies on the broker's redelivery count (Pulsar keeps none for a Failover
        subscription, and resets it on restart). Negative-acks only when even the dead letter
        cannot be written: the database is down, and the event must wait for it.
        """
        error: BaseException | None = None
        for attempt in range(1 + max(0, settings.TTS_EVENT_APPLY_RETRIES)):
            if attempt == 0:
                self._refresh_connections()
            else:
                close_old_connections()
            try:
                result = apply()
            except DatabaseError as raised:
                error = raised
                logger.warning("database error applying %s (try %d): %s", what, attempt + 1, raised)
                connections.close_all()
                time.sleep(DB_ERROR_PAUSE_S * (attempt + 1))  # the database may be restarting
                continue
            except Exception as raised:  # a bug or a poison event: retrying cannot help
                error = raised
                logger.exception("unexpected error applying %s", what)
                break
            logger.debug("%s: %s", what, result)
            if on_result is not None:
                on_result(result)
            return True
        try:
            services.event_dead_letter_create(error=f"{type(error).__name__}: {error}", **dead_letter)
        except DatabaseError:
            logger.exception("cannot dead-letter %s either (database down); negative-ack", what)
            connections.close_all()
            time.sleep(DB_ERROR_PAUSE_S)  # don't spin through the backlog while the database is down
            return False
        return True


def start_metrics_server(*, port: int) -> None:
    """Serve this process's metrics (prometheus_client's default registry) on `port`."""
    from prometheus_client import start_http_server

    start_http_server(port)
    logger.info("metrics on :%d/metrics", port)
    metrics.OUTBOX_BACKLOG.set(0)  # exported from the start, set by the relay thread
