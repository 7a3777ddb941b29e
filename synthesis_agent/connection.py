"""The agent's broker plumbing: one client, the events producer, a Shared consumer per job queue
and a reader of the control topic. The worker decides; this module only talks to Pulsar."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import pulsar

from tts_contracts import AGENT_SUBSCRIPTION, JobEvent, encode_events
from tts_contracts.messages import MAX_EVENTS_PER_MESSAGE
from tts_runtime import pulsar_client

from .config import AgentConfig

logger = logging.getLogger(__name__)

# Minimum delay of the client's own negative-ack redelivery; the worker's backoff comes on top.
NACK_DELAY_MS = 500


class BrokerConnection:
    def __init__(self, config: AgentConfig, *, operation_timeout_s: int = 10) -> None:
        self.config = config
        self.operation_timeout_s = operation_timeout_s
        self._client: pulsar.Client | None = None
        self._producer: pulsar.Producer | None = None
        self._control: pulsar.Reader | None = None
        self.consumers: dict[str, pulsar.Consumer] = {}

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        config, topics = self.config, self.config.topics
        self._client = pulsar_client(
            config.pulsar_url, timeout_s=self.operation_timeout_s, auth_token=config.pulsar_auth_token
        )
        # Events first: a job must never be received before its events can be published.
        self._producer = self._client.create_producer(
            topics.events_topic,
            send_timeout_millis=15000,
            block_if_queue_full=True,
            chunking_enabled=True,  # a giant single sentence may exceed the broker's message limit
        )
        # Notices from now on: a job that ended earlier has no message left for this agent to get.
        self._control = self._client.create_reader(topics.control_topic, pulsar.MessageId.latest)
        self._spread_consumer_ids()
        for queue in config.queues:
            self.consumers[queue] = self._subscribe(queue)
        logger.info("consuming %s as %s", ", ".join(config.job_topic(q) for q in config.queues), AGENT_SUBSCRIPTION)

    def _spread_consumer_ids(self) -> None:
        """Start this client's job consumers at a random consumer id (embedded broker only).

        pulsar-lite refuses a consumer whose id another client already uses on the same topic and
        subscription (see `_subscribe`), and every client numbers its consumers from 0, so agents
        that serve the same classes collide on every subscription, each refusal costing an
        operation timeout. A few throwaway readers (one id each) make the collision rare.
        """
        assert self._client is not None
        for _ in range(random.randrange(self.config.consumer_id_spread + 1)):
            self._client.create_reader(self.config.topics.control_topic, pulsar.MessageId.latest).close()

    def _subscribe(self, queue: str, *, attempts: int = 5) -> pulsar.Consumer:
        """Subscribe to one job queue, retrying a failed subscription.

        Why retry: pulsar-lite keys consumers by (topic, subscription, consumer id) instead of
        (connection, consumer id), and every client numbers its consumers from 0, so a second
        agent process whose first consumer is on the same class as another agent's first one
        is refused (the broker drops the connection; the client times out). A new attempt
        takes the next consumer id, which is free. Apache Pulsar never needs the retry.
        """
        assert self._client is not None
        config, topics = self.config, self.config.topics
        for attempt in range(1, attempts + 1):
            try:
                return self._client.subscribe(
                    config.job_topic(queue),
                    AGENT_SUBSCRIPTION,
                    consumer_type=pulsar.ConsumerType.Shared,
                    # 1 is the floor on this client (0 breaks receive(timeout)); the agent only
                    # receives from a queue when it will start the job at once, so at most one
                    # message per queue waits here, and a short one for at most about a sentence.
                    receiver_queue_size=1,
                    consumer_name=f"{config.agent_id}-{queue}",
                    negative_ack_redelivery_delay_ms=NACK_DELAY_MS,
                    initial_position=pulsar.InitialPosition.Earliest,
                    dead_letter_policy=pulsar.ConsumerDeadLetterPolicy(
                        # A backstop only: the client dead-letters a message delivered more than
                        # max_redeliver_count times after the first. Crash loops are counted by the
                        # claims (deliveries without progress), errors by the pipeline. A voice
                        # pool's topics dead-letter to the shared class topic the gateway reads.
                        max_redeliver_count=max(1, config.dead_letter_after_deliveries - 1),
                        dead_letter_topic=topics.dead_letter_topic(queue),
                    ),
                )
            except pulsar.Timeout as error:
                if attempt == attempts:
                    raise
                logger.warning(
                    "subscribing to %s failed (%s, attempt %d of %d); retrying with a new consumer id",
                    config.job_topic(queue),
                    error,
                    attempt,
                    attempts,
                )
        raise AssertionError("unreachable")

    def receive(self, queue: str, timeout_ms: int) -> pulsar.Message | None:
        try:
            return self.consumers[queue].receive(timeout_millis=timeout_ms)
        except pulsar.Timeout:
            return None

    def acknowledge(self, queue: str, message: pulsar.Message) -> None:
        consumer = self.consumers.get(queue)
        if consumer is None:  # closed at shutdown: the broker has the message back already
            return
        try:
            consumer.acknowledge(message)
        except pulsar.PulsarException as error:  # the broker redelivers it; the claim and the
            logger.warning("ack on %s failed: %s", queue, error)  # ended set keep that harmless

    def negative_acknowledge(self, queue: str, message: pulsar.Message) -> None:
        if queue in self.consumers:
            self.consumers[queue].negative_acknowledge(message)

    def send(self, events: Sequence[JobEvent]) -> None:
        """Publish events of one job as one message and wait for the broker's confirmation
        (raises PulsarException).

        One message, not one per event: a step's `started`, segment and `completed` then cost one
        confirmation round trip, one delivery and one ack. Not three pipelined `send_async`s:
        with the embedded broker (pulsar-lite 0.2.0) those reached a subscriber two or three
        times each in 2 of 10 tries, a rare, timing-dependent fault.
        """
        assert self._producer is not None
        for first in range(0, len(events), MAX_EVENTS_PER_MESSAGE):
            group = events[first : first + MAX_EVENTS_PER_MESSAGE]
            self._producer.send(encode_events(group), partition_key=group[0].job_id)

    def control_notices(self, *, limit: int = 1000) -> list[bytes]:
        """The control messages that arrived since the last call (never waits)."""
        notices: list[bytes] = []
        while self._control is not None and len(notices) < limit:
            try:
                notices.append(self._control.read_next(timeout_millis=0).data())
            except pulsar.Timeout:
                break
            except pulsar.PulsarException as error:
                logger.warning("reading the control topic failed: %s", error)
                break
        return notices

    def close_consumer(self, queue: str) -> None:
        """Close one consumer: its unacked messages go back to the broker for other agents."""
        consumer = self.consumers.pop(queue, None)
        if consumer is not None:
            try:
                consumer.close()
            except pulsar.PulsarException as error:
                logger.warning("closing the %s consumer failed: %s", queue, error)

    def close(self) -> None:
        """Close consumers (releasing unacked messages to the broker), reader, producer and client."""
        for queue in list(self.consumers):
            self.close_consumer(queue)
        for closable in (self._control, self._producer, self._client):
            if closable is not None:
                try:
                    closable.close()
                except pulsar.PulsarException as error:
                    logger.warning("closing %s failed: %s", type(closable).__name__, error)
        self._control = self._producer = self._client = None
