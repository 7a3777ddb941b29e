"""The consumer loop: Pulsar in, events out, acks, retries, preemption, shutdown.

The loop owns every broker interaction and every metric; the decisions live elsewhere:
`Scheduler` picks which job runs the next sentence, `JobRun` turns a job into events. One
thread does everything (receive, synthesize, publish, ack), so there is no locking, and a
sentence is the unit of preemption and of shutdown.

Delivery rules:
- A job message is acked only after its final event (`completed` or `failed`) is confirmed.
- A synthesis error is retried: the message is negatively acked after an exponential
  backoff (held unacked meanwhile), until the last delivery, which publishes `failed`.
- A job released at shutdown goes back to the broker by closing its consumer: the broker
  redelivers it at once to another agent, which replays finished sentences from the cache.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import pulsar

from tts_runtime import pulsar_authentication

from . import metrics
from .cache import SentenceCache
from .config import AgentConfig
from .logs import job_context, pulsar_logger, set_agent_id
from .pipeline import JobRun, PipelineSettings, VoiceSource
from .protocol import LENGTH_CLASSES, JobEvent
from .scheduler import Scheduler

logger = logging.getLogger(__name__)

SUBSCRIPTION = "tts-agents"
# Minimum delay of the client's own negative-ack redelivery; our backoff comes on top.
NACK_DELAY_MS = 500


class PublishError(RuntimeError):
    """An event was not confirmed by the broker."""


@dataclass(eq=False)
class _Job:
    queue: str
    message: pulsar.Message
    run: JobRun
    received_at: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return self.run.length_class if self.run.length_class in LENGTH_CLASSES else self.queue

    def context(self) -> AbstractContextManager[None]:
        return job_context(self.run.job_id, self.run.attempt, self.label, self.run.redelivery_count)


class Agent:
    """Serves `config.queues` until `stop` is set, then drains gracefully and returns."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        voices: VoiceSource,
        cache: SentenceCache,
        idle_poll_ms: int = 50,
        operation_timeout_s: int = 10,
    ) -> None:
        self.config = config
        self.voices = voices
        self.cache = cache
        self.idle_poll_ms = idle_poll_ms
        self.operation_timeout_s = operation_timeout_s
        self.settings = PipelineSettings(
            agent_id=config.agent_id, max_attempts=config.max_attempts, time_limit_s=config.job_time_limit_s
        )
        self.scheduler: Scheduler[_Job] = Scheduler(config.queues)
        self._client: pulsar.Client | None = None
        self._consumers: dict[str, pulsar.Consumer] = {}
        self._producer: pulsar.Producer | None = None
        self._deferred: list[tuple[float, str, pulsar.Message]] = []  # (due, queue, message) to nack
        self.ready = threading.Event()  # set once connected and consuming

    # --- connection ------------------------------------------------------------------------

    def connect(self) -> None:
        config = self.config
        self._client = pulsar.Client(
            config.pulsar_url,
            authentication=pulsar_authentication(config.pulsar_auth_token),
            logger=pulsar_logger(),
            operation_timeout_seconds=self.operation_timeout_s,
        )
        # Events first: a job must never be received before its events can be published.
        self._producer = self._client.create_producer(
            config.events_topic,
            producer_name=None,
            send_timeout_millis=15000,
            block_if_queue_full=True,
            chunking_enabled=True,  # a giant single sentence may exceed the broker's message limit
        )
        for queue in config.queues:
            self._consumers[queue] = self._subscribe(queue)
        logger.info("consuming %s as %s", ", ".join(config.job_topic(q) for q in config.queues), SUBSCRIPTION)

    def _subscribe(self, queue: str, *, attempts: int = 3) -> pulsar.Consumer:
        """Subscribe to one job queue, retrying a failed subscription.

        Why retry: pulsar-lite keys consumers by (topic, subscription, consumer id) instead of
        (connection, consumer id), and every client numbers its consumers from 0, so a second
        agent process whose first consumer is on the same class as another agent's first one
        is refused (the broker drops the connection; the client times out). A new attempt
        takes the next consumer id, which is free. Apache Pulsar never needs the retry.
        """
        assert self._client is not None
        config = self.config
        for attempt in range(1, attempts + 1):
            try:
                return self._client.subscribe(
                    config.job_topic(queue),
                    SUBSCRIPTION,
                    consumer_type=pulsar.ConsumerType.Shared,
                    # 1 is the floor on this client (0 breaks receive(timeout)); the agent only
                    # receives from a queue when it will start the job at once, so at most one
                    # message per queue waits here, and a short one for at most about a sentence.
                    receiver_queue_size=1,
                    consumer_name=f"{config.agent_id}-{queue}",
                    negative_ack_redelivery_delay_ms=NACK_DELAY_MS,
                    initial_position=pulsar.InitialPosition.Earliest,
                    dead_letter_policy=pulsar.ConsumerDeadLetterPolicy(
                        # The client dead-letters a message delivered more than max_redeliver_count
                        # times after the first: TTS_MAX_ATTEMPTS deliveries in all (CONTRACTS.md).
                        max_redeliver_count=max(1, config.max_attempts - 1),
                        dead_letter_topic=config.dead_letter_topic(queue),
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

    def close(self) -> None:
        """Close consumers (releasing unacked messages to the broker), producer and client."""
        for queue in list(self._consumers):
            self._close_consumer(queue)
        for closable in (self._producer, self._client):
            if closable is not None:
                try:
                    closable.close()
                except pulsar.PulsarException as error:
                    logger.warning("closing %s failed: %s", type(closable).__name__, error)
        self._producer = self._client = None

    def _close_consumer(self, queue: str) -> None:
        consumer = self._consumers.pop(queue, None)
        if consumer is not None:
            try:
                consumer.close()
            except pulsar.PulsarException as error:
                logger.warning("closing the %s consumer failed: %s", queue, error)

    # --- main loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        set_agent_id(self.config.agent_id)
        if self._client is None:
            self.connect()
        self.ready.set()
        try:
            while not stop.is_set():
                self._nack_due()
                self._tick()
            self._shutdown()
        finally:
            self.close()
            self._update_gauges()

    def _tick(self) -> None:
        self._poll()
        current = self.scheduler.current()
        self._update_gauges()
        if current is not None:
            self._step(current[1])

    def _poll(self) -> None:
        """Receive at most one job: any queue when idle (waiting a little), else only higher ones."""
        queues = self.scheduler.queues_to_poll()
        if not queues:
            return
        for queue in queues:
            message = self._receive(queue, 0)
            if message is not None:
                self._admit(queue, message)
                return
        if self.scheduler.current() is None:
            # Idle: block briefly on the top queue instead of spinning; lower queues are
            # polled again within idle_poll_ms.
            message = self._receive(queues[0], self.idle_poll_ms)
            if message is not None:
                self._admit(queues[0], message)

    def _receive(self, queue: str, timeout_ms: int) -> pulsar.Message | None:
        try:
            return self._consumers[queue].receive(timeout_millis=timeout_ms)
        except pulsar.Timeout:
            return None

    # --- one job ---------------------------------------------------------------------------

    def _admit(self, queue: str, message: pulsar.Message) -> None:
        run = JobRun(
            message.data(),
            queue=queue,
            redelivery_count=message.redelivery_count(),
            voices=self.voices,
            cache=self.cache,
            settings=self.settings,
        )
        job = _Job(queue=queue, message=message, run=run)
        preempted = self.scheduler.admit(queue, job)
        if preempted is not None:
            metrics.PREEMPTIONS.labels(preempted.label).inc()
            with preempted.context():
                paused = preempted.run
                # Nothing to flush: segment boundaries never depend on preemption (segments.py).
                logger.info("paused at sentence %d/%d for a %s job", paused.next_index, paused.sentence_count, queue)
        events = run.begin()  # parses the message: the log context is known only after it
        with job.context():
            if run.queue_wait_s is not None:
                metrics.QUEUE_WAIT_SECONDS.labels(job.label).observe(run.queue_wait_s)
            if run.outcome is None:
                logger.info("started: %d sentences, queue wait %.2f s", run.sentence_count, run.queue_wait_s or 0)
            if self._publish(job, events) and run.done:
                self._finish(job)

    def _step(self, job: _Job) -> None:
        with job.context():
            began = time.monotonic()
            report = job.run.step()
            metrics.BUSY_SECONDS.labels(job.label).inc(time.monotonic() - began)
            if report.source is not None:
                metrics.SENTENCES.labels(job.label, report.source).inc()
                metrics.AUDIO_SECONDS.labels(job.label).inc(report.audio_s)
            if report.source == "synthesized":
                metrics.SENTENCE_SYNTHESIS_SECONDS.labels(job.label).observe(report.synthesis_s)
            if self._publish(job, report.events) and job.run.done:
                self._finish(job)

    def _publish(self, job: _Job, events: Iterable[JobEvent]) -> bool:
        """Send events and wait for each confirmation; on failure release the job and say False."""
        assert self._producer is not None
        for event in events:
            try:
                self._producer.send(event.to_bytes(), partition_key=event.job_id)
            except pulsar.PulsarException as error:
                logger.error("publishing the %s event failed, releasing the job: %s", event.type, error)
                metrics.FAILURES.labels(job.label, "publish_error").inc()
                self._release(job, retry=True)
                return False
            if event.type == "segment" and event.data["first_sentence"] == 0:
                metrics.TIME_TO_FIRST_SEGMENT_SECONDS.labels(job.label).observe(time.monotonic() - job.received_at)
        return True

    def _finish(self, job: _Job) -> None:
        """The run has an outcome and its events are confirmed: ack, or schedule the retry."""
        run = job.run
        outcome = run.outcome
        assert outcome is not None
        self._forget(job)
        if outcome.status == "retry":
            metrics.FAILURES.labels(job.label, outcome.reason).inc()
            logger.warning("delivery failed, will be retried: %s", outcome.detail)
            self._release(job, retry=True)
            return
        self._consumers[job.queue].acknowledge(job.message)
        metrics.JOBS.labels(job.label, outcome.status).inc()
        metrics.JOB_SECONDS.labels(job.label).observe(time.monotonic() - job.received_at)
        if outcome.status == "succeeded":
            if run.audio_s > 0 and run.synthesis_s > 0:
                metrics.REALTIME_FACTOR.labels(job.label).observe(run.synthesis_s / run.audio_s)
            logger.info(
                "completed: %d sentences (%d cached), %.2f s audio in %.2f s",
                run.sentence_count,
                run.cached_sentences,
                run.audio_s,
                time.monotonic() - job.received_at,
            )
        else:
            metrics.FAILURES.labels(job.label, outcome.reason).inc()
            logger.warning("failed (%s): %s", outcome.reason, outcome.detail)

    def _forget(self, job: _Job) -> None:
        # Not admitted any more when it failed in begin() or was already released.
        with contextlib.suppress(ValueError):
            self.scheduler.finish(job)

    def _release(self, job: _Job, *, retry: bool) -> None:
        """Give the job back to the broker: after a backoff for a retry, otherwise at once."""
        self._forget(job)
        metrics.JOBS.labels(job.label, "released").inc()
        if retry:
            delay = min(self.config.retry_backoff_base_s * 2**job.run.redelivery_count, self.config.retry_backoff_max_s)
            self._deferred.append((time.monotonic() + delay, job.queue, job.message))
        elif job.queue in self._consumers:
            self._consumers[job.queue].negative_acknowledge(job.message)

    def _nack_due(self) -> None:
        if not self._deferred:
            return
        now = time.monotonic()
        due = [item for item in self._deferred if item[0] <= now]
        self._deferred = [item for item in self._deferred if item[0] > now]
        for _, queue, message in due:
            if queue in self._consumers:
                self._consumers[queue].negative_acknowledge(message)

    def _update_gauges(self) -> None:
        current = self.scheduler.current()
        running = current[1].label if current else None
        in_flight = Counter(job.label for _, job in self.scheduler)
        for length_class in LENGTH_CLASSES:
            metrics.BUSY.labels(length_class).set(1 if length_class == running else 0)
            metrics.JOBS_IN_FLIGHT.labels(length_class).set(in_flight[length_class])

    # --- shutdown --------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop receiving; finish the running job within the grace period, release the rest."""
        deadline = time.monotonic() + self.config.shutdown_grace_s
        current = self.scheduler.current()
        running = current[1] if current else None
        # Retries waiting for their backoff go back now: this agent will not serve them.
        for _, queue, message in self._deferred:
            if queue in self._consumers:
                self._consumers[queue].negative_acknowledge(message)
        self._deferred.clear()
        # Paused jobs cannot finish before the running one; closing their consumers hands them
        # (and any prefetched message) to another agent at once.
        for _queue, job in self.scheduler.paused():
            with job.context():
                logger.info("released at sentence %d/%d (shutdown)", job.run.next_index, job.run.sentence_count)
            self._forget(job)
            metrics.JOBS.labels(job.label, "released").inc()
        for queue in list(self._consumers):
            if running is None or queue != running.queue:
                self._close_consumer(queue)
        if running is None:
            return
        with running.context():
            logger.info(
                "shutting down: finishing the current job within %g s (%d/%d sentences done)",
                self.config.shutdown_grace_s,
                running.run.next_index,
                running.run.sentence_count,
            )
        while self.scheduler.current() is not None and time.monotonic() < deadline:
            self._update_gauges()
            self._step(running)
        if self.scheduler.current() is not None:
            with running.context():
                logger.warning(
                    "not finished within the grace period; released at sentence %d/%d",
                    running.run.next_index,
                    running.run.sentence_count,
                )
            self._forget(running)
            metrics.JOBS.labels(running.label, "released").inc()
            self._close_consumer(running.queue)
