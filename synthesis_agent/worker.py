"""The consumer loop: job messages in, events out, acks, retries, preemption, liveness, shutdown.

The loop owns every broker interaction (through `BrokerConnection`) and reports what happens to
an `AgentObserver` (metrics live there, none here); `Scheduler` picks which job runs the next
step, `JobRun` turns a job into events. One thread does everything but compute the steps of
the job of a lower-priority class, which run on a low-priority thread (background.py) while
this one waits on the top queue, so a short job runs the moment it arrives; this thread
publishes every step's events and settles a job only once no step of it is in flight, so there
is no locking. A step (one chunk of audio, or one cached sentence) is the unit of preemption,
cancellation and shutdown.

The delivery rules (claims, acks, retries, heartbeats, cancellation, release at shutdown) are
written down in synthesis_agent/README.md.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pulsar

from tts_contracts import ContractError, JobEnded, JobEvent, SegmentEvent

from .background import BackgroundSteps
from .cache import SentenceCache
from .claims import Claims, NoClaims
from .config import AgentConfig
from .connection import BrokerConnection
from .control import EndedJobs
from .held import HeldJob as _Job
from .logs import job_context, set_agent_id
from .metrics import PrometheusObserver
from .observer import AgentObserver, ClaimResult
from .outcomes import StepReport
from .pipeline import JobRun, PipelineSettings, VoiceSource
from .scheduler import Scheduler

logger = logging.getLogger(__name__)

# While the running job steps on the background thread, the main thread blocks this long on the
# top queue (a short job arriving wakes it at once), then publishes the steps' events, heartbeats
# and polls the queues in between. Longer waits only delay events; shorter ones burn CPU.
BACKGROUND_WAIT_MS = 50
# A run's `started` is held back and sent with its first sentence's events, or after this long
# (a slow first sentence, or a run waiting behind other work). A short job's three events then
# reach the gateway together and are applied in one transaction (its consumer lingers after a
# `started` too); the event keeps the time it was made, so the job's timings do not move.
STARTED_SEND_AFTER_S = 0.5
# A duplicate whose claim another agent holds is looked at again once that claim would have
# expired (its TTL, plus this for clocks and Redis round trips): still held means the holder
# renewed it and lives.
DUPLICATE_RECHECK_MARGIN_S = 0.5


@dataclass(frozen=True)
class _Duplicate:
    """A delivery of a job another agent held a claim on when it arrived, kept unacked."""

    queue: str
    message: pulsar.Message
    key: tuple[str, int]
    recheck_at: float


@dataclass(frozen=True)
class _StepResult:
    report: StepReport
    began: float
    done: bool  # the run had its outcome right after this step


def _run_step(job: _Job) -> _StepResult:
    began = time.monotonic()
    with job.context():
        report = job.run.step()
    return _StepResult(report, began, job.run.done)


class Agent:
    """Serves `config.queues` until `stop` is set, then drains gracefully and returns."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        voices: VoiceSource,
        cache: SentenceCache,
        claims: Claims | None = None,
        observer: AgentObserver | None = None,
        idle_poll_ms: int = 50,
        operation_timeout_s: int = 10,
    ) -> None:
        self.config = config
        self.voices = voices
        self.cache = cache
        self.claims: Claims = claims or NoClaims()
        self.observer = observer or PrometheusObserver()
        self.idle_poll_ms = idle_poll_ms
        self.broker = BrokerConnection(config, operation_timeout_s=operation_timeout_s)
        self.settings = PipelineSettings(
            agent_id=config.agent_id,
            max_attempts=config.max_attempts,
            time_limit_s=config.job_time_limit_s,
            time_limit_rtf=config.job_time_limit_rtf,
            chunk_seconds=config.chunk_seconds,
            preview_min_seconds=config.preview_min_seconds,
        )
        self.scheduler: Scheduler[_Job] = Scheduler(config.queues)
        # Steps of every class below the agent's top one run on a low-priority thread.
        self.background: BackgroundSteps[_Job, _StepResult] | None = None
        if config.background_nice and len(config.queues) > 1:
            self.background = BackgroundSteps(nice=config.background_nice, name=f"{config.agent_id}-background")
        self.ended = EndedJobs()
        self._deferred: list[tuple[float, str, pulsar.Message]] = []  # (due, queue, message) to nack
        self._duplicates: list[_Duplicate] = []  # claimed elsewhere on arrival: is the holder alive?
        self._next_heartbeat = 0.0
        self.ready = threading.Event()  # set once connected and consuming

    def connect(self) -> None:
        self.broker.connect()

    def close(self) -> None:
        if self.background is not None:
            self.background.close()
        self.broker.close()

    # --- main loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        set_agent_id(self.config.agent_id)
        if not self.broker.connected:
            self.connect()
        self.ready.set()
        self._next_heartbeat = time.monotonic() + self.config.heartbeat_interval_s
        try:
            while not stop.is_set():
                self._nack_due()
                self._recheck_duplicates()
                self._tick()
            self._shutdown()
        finally:
            self.close()
            self._report_holding()

    def _tick(self) -> None:
        self._housekeeping()
        self._poll()
        self._collect_background()
        current = self.scheduler.current()
        self._report_holding()
        if current is None:
            return
        queue, job = current
        background = self.background
        if background is None or queue == self.config.queues[0]:
            # Here, at normal priority. A background job goes on meanwhile on its own thread:
            # the kernel gives it only the CPU this one leaves, so an idle core still serves it.
            self._step(job)
            return
        in_flight = background.in_flight
        if in_flight is None:
            self._start_background(job)
        elif in_flight is job and not background.pausing:
            self._wait_on_top_queue()
        else:
            # A more urgent background job (medium over long): the thread stops after its step.
            background.pause()
            self._collect_background(timeout_s=0.005)

    def _housekeeping(self) -> None:
        """Between two sentences: learn which jobs ended, drop those held, heartbeat when due."""
        for payload in self.broker.control_notices():
            try:
                notice = JobEnded.from_bytes(payload)
            except ContractError as error:
                logger.warning("ignoring an unreadable control message: %s", error)
                continue
            self.ended.add(notice.job_id, notice.attempt)
        for _, job in list(self.scheduler):
            if job.key is not None and job.key in self.ended:
                with job.context():
                    logger.info("the job ended elsewhere; dropped at sentence %d", job.run.next_index)
                self._drop(job)
        self._send_held_back(older_than_s=STARTED_SEND_AFTER_S)
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + self.config.heartbeat_interval_s
            self._heartbeat()

    def _send_held_back(self, *, older_than_s: float) -> None:
        """Send the `started` events held back at least `older_than_s`: a run's first sentence
        took long, or the run waits behind other work (0: all of them)."""
        now = time.monotonic()
        for _, job in list(self.scheduler):
            if job.unsent and now - job.unsent_since >= older_than_s:
                self._publish(job, job.with_unsent([]))

    def _heartbeat(self) -> None:
        self._send_held_back(older_than_s=0.0)  # a heartbeat never goes before its run's `started`
        current = self.scheduler.current()
        background = self.background
        in_flight = background.in_flight if background is not None and not background.pausing else None
        for _, job in list(self.scheduler):
            if job.key is None or job.run.done:
                continue
            if not self.claims.renew(*job.key):  # frozen past the expiry; the re-send's holder finishes it
                with job.context():
                    logger.warning("claim taken over by another agent; dropped at sentence %d", job.run.next_index)
                self._drop(job)
                continue
            try:
                running = job is in_flight or (current is not None and job is current[1])
                self.broker.send([job.run.heartbeat(paused=not running)])
            except pulsar.PulsarException as error:  # the next one may pass; the job goes on
                with job.context():
                    logger.warning("heartbeat not published: %s", error)

    def _poll(self) -> None:
        """Receive at most one job: any queue when idle (waiting a little), else only higher ones."""
        queues = self.scheduler.queues_to_poll()
        if not queues:
            return
        for queue in queues:
            message = self.broker.receive(queue, 0)
            if message is not None:
                self._admit(queue, message)
                return
        if self.scheduler.current() is None:
            # Idle: block briefly on the top queue instead of spinning; lower queues are
            # polled again within idle_poll_ms.
            message = self.broker.receive(queues[0], self.idle_poll_ms)
            if message is not None:
                self._admit(queues[0], message)

    # --- one job ---------------------------------------------------------------------------

    def _admit(self, queue: str, message: pulsar.Message, *, claimed: ClaimResult | None = None) -> None:
        """Start (or resume) a delivery here; `claimed`: its claim was just made (a duplicate
        taken up), so it is not claimed, nor counted, a second time."""
        run = JobRun(
            message.data(),
            queue=queue,
            redelivery_count=message.redelivery_count(),
            voices=self.voices,
            cache=self.cache,
            settings=self.settings,
        )
        job = _Job(queue=queue, message=message, run=run)
        if run.identify() is not None and not self._claim(job, claimed=claimed):
            return
        preempted = self.scheduler.admit(queue, job)
        if preempted is not None:
            self.observer.on_preempted(length_class=preempted.label)
            with preempted.context():
                paused = preempted.run
                # Nothing to flush: segment boundaries never depend on preemption (segments.py).
                # A background job is not paused by a top-class one: it steps on at low priority.
                on_background = self.background is not None and self.background.in_flight is preempted
                state = "goes on at low priority" if on_background and queue == self.config.queues[0] else "paused"
                logger.info("%s at sentence %d/%d for a %s job", state, paused.next_index, paused.sentence_count, queue)
        events = run.begin()
        with job.context():
            self.observer.on_job_started(length_class=job.label, queue_wait_s=run.queue_wait_s)
            if run.outcome is None:
                logger.info("started: %d sentences, queue wait %.2f s", run.sentence_count, run.queue_wait_s or 0)
                job.hold_back(events)  # `started` goes with the first step's events (see _send_held_back)
            elif self._publish(job, events) and run.done:
                self._finish(job)

    def _claim(self, job: _Job, *, claimed: ClaimResult | None = None) -> bool:
        """Claim a readable delivery (unless `claimed` says how that just went); False when it
        was settled here instead (acked)."""
        assert job.key is not None
        with job.context():
            if job.key in self.ended:
                logger.info("the job already ended; acked without synthesis")
                self.broker.acknowledge(job.queue, job.message)
                self.observer.on_job_ended_elsewhere(length_class=job.label)
                return False
            if self._holds(job.key):
                logger.info("this agent already holds the job; duplicate delivery acked")
                self.broker.acknowledge(job.queue, job.message)
                return False
            result = claimed
            if result is None:
                result = self.claims.claim(*job.key)
                if result is not None:
                    self.observer.on_claim(result=result)
            if result == "held_elsewhere":
                # Kept until the claim would have expired: a live holder renews it (then this is
                # a duplicate, acked), a dead one does not (then it is this delivery's job). An ack
                # now would leave a job whose holder died to the gateway's watchdog, minutes for
                # one still queued; a nack now would loop it towards the dead-letter topic.
                recheck_in = self.claims.ttl_s + DUPLICATE_RECHECK_MARGIN_S
                logger.info("another agent holds the job; this delivery waits %.1f s for the claim", recheck_in)
                self._duplicates.append(_Duplicate(job.queue, job.message, job.key, time.monotonic() + recheck_in))
                return False
            count = self.claims.delivery_started(*job.key)
            job.counted = count is not None
            if count is None or count <= self.config.max_attempts:
                return True
            died = count - 1
            events = job.run.give_up(
                "agent_crashed_repeatedly",
                f"The agent working on this job stopped without an outcome {died} times (out of memory, "
                "killed or crashed); it was not tried again.",
                "AgentCrashedRepeatedly",
            )
            logger.error("%d deliveries died without an outcome; failing the job", died)
            if self._publish(job, events):
                self._finish(job)
            return False

    def _recheck_duplicates(self) -> None:
        """Settle the duplicates whose holder's claim would have expired by now."""
        if not self._duplicates:
            return
        now = time.monotonic()
        due = [duplicate for duplicate in self._duplicates if duplicate.recheck_at <= now]
        self._duplicates = [duplicate for duplicate in self._duplicates if duplicate.recheck_at > now]
        for duplicate in due:
            self._settle_duplicate(duplicate, can_start=duplicate.queue in self.scheduler.queues_to_poll())

    def _settle_duplicate(self, duplicate: _Duplicate, *, can_start: bool, lapsed: bool = True) -> None:
        """Ack it if its job ended or its holder renewed the claim; else run it here when this
        agent would take such a job now, or hand it back to the broker for one that would.
        `lapsed` False (at shutdown): the claim may not have expired yet, so a held claim proves
        nothing and the duplicate goes back to the broker."""
        job_id, attempt = duplicate.key
        with job_context(job_id, attempt, duplicate.queue, duplicate.message.redelivery_count()):
            if duplicate.key in self.ended or self._holds(duplicate.key):
                # Held here: an earlier duplicate of the same job was taken up by this agent.
                reason = "the attempt ended" if duplicate.key in self.ended else "this agent holds the job now"
                logger.info("duplicate delivery acked: %s", reason)
                self.broker.acknowledge(duplicate.queue, duplicate.message)
                return
            result = self.claims.claim(job_id, attempt)
            if result is not None:
                self.observer.on_claim(result=result)
            if result == "held_elsewhere" and lapsed:
                logger.info("duplicate delivery acked: its holder renewed the claim")
                self.broker.acknowledge(duplicate.queue, duplicate.message)
                return
            if result == "held_elsewhere":
                self.broker.negative_acknowledge(duplicate.queue, duplicate.message)
                return
            if result == "error":
                logger.warning("the holder's claim could not be checked (Redis unavailable): the job is taken up again")
            else:
                logger.warning("the holder's claim lapsed without renewal: the job is taken up again")
            if can_start:
                self._admit(duplicate.queue, duplicate.message, claimed=result)  # the claim is this agent's now
                return
            if result == "claimed":
                self.claims.release(job_id, attempt)
            self.broker.negative_acknowledge(duplicate.queue, duplicate.message)

    def _holds(self, key: tuple[str, int]) -> bool:
        return any(held.key == key for _, held in self.scheduler)

    def _step(self, job: _Job) -> None:
        result = _run_step(job)
        self._after_step(job, result.report, began=result.began, done=result.done)

    def _start_background(self, job: _Job) -> None:
        """Step `job` on the background thread until its run is done or it is paused."""
        assert self.background is not None
        self.background.start(job, lambda: _run_step(job), lambda result: result.done)

    def _wait_on_top_queue(self) -> None:
        """The running job steps on the background thread: wait for a job of the top class."""
        top = self.config.queues[0]
        message = self.broker.receive(top, BACKGROUND_WAIT_MS)
        if message is not None:
            self._admit(top, message)

    def _collect_background(self, timeout_s: float = 0.0) -> None:
        """Publish the events of the background thread's finished steps, in order, from here."""
        if self.background is None:
            return
        for job, result in self.background.collect(timeout_s):
            if not any(held is job for _, held in self.scheduler):
                with job.context():  # ended elsewhere, taken over or released while it stepped
                    logger.info("a background step finished for a job no longer held; its events are dropped")
                continue
            self._after_step(job, result.report, began=result.began, done=result.done)

    def _after_step(self, job: _Job, report: StepReport, *, began: float, done: bool) -> None:
        """Observe a step and publish its events; `done`: the run was over right after it."""
        with job.context():
            self.observer.on_step(
                length_class=job.label,
                busy_s=time.monotonic() - began,
                source=report.source,
                synthesis_s=report.synthesis_s,
                audio_s=report.audio_s,
            )
            if report.source == "synthesized" and job.counted and not job.progressed and job.key:
                job.progressed = True  # deliveries that die while the job moves on are no crash loop
                self.claims.delivery_progressed(*job.key)
            if not report.events and not done:
                return  # mid-sentence: a `started` held back waits for the sentence (or its time)
            if self._publish(job, job.with_unsent(report.events)) and done:
                self._finish(job)

    def _publish(self, job: _Job, events: Iterable[JobEvent]) -> bool:
        """Send a step's events as one message and wait for its confirmation; on failure release
        or fail the job, say False."""
        events = list(events)
        if not events:
            return True
        try:
            self.broker.send(events)
        except pulsar.PulsarException as error:
            logger.error("publishing the %s event(s) failed: %s", "+".join(event.type for event in events), error)
            self._publish_failed(job, error)
            return False
        for event in events:
            if isinstance(event, SegmentEvent) and event.first_sentence == 0:
                self.observer.on_first_segment(length_class=job.label, seconds=time.monotonic() - job.received_at)
        return True

    def _publish_failed(self, job: _Job, error: pulsar.PulsarException) -> None:
        """Retry later; on the last delivery, say so in a (small) `failed` event, not as a synthesis error."""
        run = job.run
        if run.job_id is not None and run.last_attempt:
            reason = f"The agent could not publish the job's events: {error}"
            failed = run.give_up("publish_error", reason, type(error).__name__)
            with contextlib.suppress(pulsar.PulsarException):
                self.broker.send(failed)
                self._finish(job)  # counts the failure
                return
        self.observer.on_job_failed_delivery(length_class=job.label, reason="publish_error")
        self._release(job, retry=True)

    def _finish(self, job: _Job) -> None:
        """The run has an outcome and its events are confirmed: ack, or schedule the retry."""
        run = job.run
        outcome = run.outcome
        assert outcome is not None
        if outcome.status == "retry":
            self.observer.on_job_failed_delivery(length_class=job.label, reason=outcome.reason)
            logger.warning("delivery failed, will be retried: %s", outcome.detail)
            self._release(job, retry=True)
            return
        self._forget(job, final=True)
        self.broker.acknowledge(job.queue, job.message)
        self.observer.on_job_finished(
            length_class=job.label,
            status="succeeded" if outcome.status == "succeeded" else "failed",
            reason=outcome.reason,
            job_s=time.monotonic() - job.received_at,
            synthesis_s=run.synthesis_s,
            audio_s=run.audio_s,
        )
        if outcome.status == "succeeded":
            logger.info(
                "completed: %d sentences (%d cached), %.2f s audio in %.2f s",
                run.sentence_count,
                run.cached_sentences,
                run.audio_s,
                time.monotonic() - job.received_at,
            )
        else:
            logger.warning("failed (%s): %s", outcome.reason, outcome.detail)

    def _forget(self, job: _Job, *, final: bool) -> None:
        """This agent is done with the delivery: unschedule it, end its count, release its claim."""
        if self.background is not None and self.background.in_flight is job:
            self.background.pause()  # its later results are dropped: it is no longer held
        # Not admitted any more when it ended before scheduling or was already released.
        with contextlib.suppress(ValueError):
            self.scheduler.finish(job)
        if job.key is not None:
            if job.counted:
                self.claims.delivery_ended(*job.key, final=final)
                job.counted = False
            self.claims.release(*job.key)

    def _drop(self, job: _Job) -> None:
        """The gateway ended the job: ack without more events."""
        self._forget(job, final=True)
        self.broker.acknowledge(job.queue, job.message)
        self.observer.on_job_ended_elsewhere(length_class=job.label)

    def _release(self, job: _Job, *, retry: bool) -> None:
        """Give the job back to the broker: after a backoff for a retry, otherwise at once."""
        self._forget(job, final=False)
        self.observer.on_released(length_class=job.label)
        if retry:
            delay = min(self.config.retry_backoff_base_s * 2**job.run.redelivery_count, self.config.retry_backoff_max_s)
            self._deferred.append((time.monotonic() + delay, job.queue, job.message))
        else:
            self.broker.negative_acknowledge(job.queue, job.message)

    def _nack_due(self) -> None:
        if not self._deferred:
            return
        now = time.monotonic()
        due = [item for item in self._deferred if item[0] <= now]
        self._deferred = [item for item in self._deferred if item[0] > now]
        for _, queue, message in due:
            self.broker.negative_acknowledge(queue, message)

    def _report_holding(self) -> None:
        current = self.scheduler.current()
        self.observer.on_holding(
            running=current[1].label if current else None,
            in_flight=Counter(job.label for _, job in self.scheduler),
        )

    # --- shutdown --------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop receiving; finish the running job within the grace period, release the rest."""
        deadline = time.monotonic() + self.config.shutdown_grace_s
        # The background thread stops after its step, so every held job is at a step boundary.
        if self.background is not None:
            self.background.pause()
            while self.background.in_flight is not None and time.monotonic() < deadline:
                self._collect_background(timeout_s=min(0.1, max(0.0, deadline - time.monotonic())))
        stuck = self.background.in_flight if self.background is not None else None
        if stuck is not None:
            with stuck.context():
                logger.warning("step still running at the deadline; released at sentence %d", stuck.run.next_index)
            self._forget(stuck, final=False)
            self.observer.on_released(length_class=stuck.label)
        current = self.scheduler.current()
        running = current[1] if current else None
        # Retries waiting for their backoff go back now: this agent will not serve them.
        for _, queue, message in self._deferred:
            self.broker.negative_acknowledge(queue, message)
        self._deferred.clear()
        # Duplicates are settled now: acked if their job ended or is held, else handed back.
        for duplicate in self._duplicates:
            self._settle_duplicate(duplicate, can_start=False, lapsed=duplicate.recheck_at <= time.monotonic())
        self._duplicates.clear()
        # Paused jobs cannot finish before the running one; closing their consumers hands them
        # (and any prefetched message) to another agent at once, their claims released first.
        for _queue, job in self.scheduler.paused():
            with job.context():
                logger.info("released at sentence %d/%d (shutdown)", job.run.next_index, job.run.sentence_count)
            self._forget(job, final=False)
            self.observer.on_released(length_class=job.label)
        for queue in list(self.broker.consumers):
            if running is None or queue != running.queue:
                self.broker.close_consumer(queue)
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
            self._housekeeping()
            self._report_holding()
            if self.scheduler.current() is not None:
                self._step(running)
        if self.scheduler.current() is not None:
            with running.context():
                logger.warning(
                    "not finished within the grace period; released at sentence %d/%d",
                    running.run.next_index,
                    running.run.sentence_count,
                )
            self._forget(running, final=False)
            self.observer.on_released(length_class=running.label)
            self.broker.close_consumer(running.queue)
