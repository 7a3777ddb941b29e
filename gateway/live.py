"""Live job updates pushed to the gateway processes: the consumer announces, each web process listens.

Mechanism (docs/STREAMING.md): after the event consumer applies an event it sends a tiny
notice `{"job_id": ...}` on the broker topic `{prefix}-job-updates`. Every gateway process runs
ONE listener thread with a non-durable reader positioned at the topic's end, and fans each
notice out to the open streams (SSE, audio) of that job, which then read the job once. The
broker is there on the embedded default (pulsar-lite) and in production (Apache Pulsar), so
one mechanism serves both; no stream polls the database. A notice says only "look again",
so a lost or duplicated one costs nothing but latency: streams re-read the job on their
15-second keep-alive as a safety net.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pulsar
from django.conf import settings

from tts_runtime import pulsar_client

from . import metrics
from .broadcast import Broadcaster, broker_reachable
from .publisher import service_topics

logger = logging.getLogger(__name__)

UPDATES_TOPIC_NAME = "job-updates"
CONNECT_TIMEOUT_S = 5


def updates_topic() -> str:
    return service_topics().topic(UPDATES_TOPIC_NAME)


# --- announcing (the consumer, and the API on cancel) ----------------------------------------

_announcer = Broadcaster(name="job-updates")
# Job ids already announced since `coalescing_start()` on this thread (unset outside).
_coalescing = threading.local()


def coalescing_start() -> None:
    """Until `coalescing_stop()`, this thread announces each job at most once.

    For the hooks of one commit: a notice only says "look again", and every hook runs after the
    commit, so a stream woken by the first notice already reads what a second would show. A short
    job ends in the same batch of events that changes it: one notice, not two (each is a message
    on the broker and one per gateway process reading it).
    """
    _coalescing.announced = set()


def coalescing_stop() -> None:
    _coalescing.__dict__.pop("announced", None)


def notify_job_update(*, job_id: uuid.UUID | str) -> None:
    """Tell every gateway process that job `job_id` changed (call after the change is committed)."""
    announced: set[str] | None = getattr(_coalescing, "announced", None)
    if announced is not None:
        if str(job_id) in announced:
            return
        announced.add(str(job_id))
    _announcer.send(
        service_url=settings.PULSAR_URL,
        auth_token=settings.PULSAR_AUTH_TOKEN,
        topic=updates_topic(),
        payload=json.dumps({"job_id": str(job_id)}).encode("utf-8"),
        partition_key=str(job_id),
    )


# --- listening (one thread per gateway process, fanning out to asyncio streams) ---------------


class JobUpdateHub:
    """Per-process registry of open streams by job id, fed by one broker reader thread."""

    def __init__(self, *, service_url: str, topic: str, auth_token: str | None = None) -> None:
        self.service_url = service_url
        self.topic = topic
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.ready = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="job-update-listener", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CONNECT_TIMEOUT_S + 2)

    @contextlib.contextmanager
    def watch(self, job_id: uuid.UUID | str, *, kind: str = "events") -> Iterator[asyncio.Event]:
        """An event set whenever job `job_id` may have changed; register BEFORE reading the job."""
        self.start()
        entry = (asyncio.get_running_loop(), asyncio.Event())
        key = str(job_id)
        with self._lock:
            self._waiters[key].add(entry)
        gauge = metrics.OPEN_STREAMS.labels(kind=kind)
        gauge.inc()
        try:
            yield entry[1]
        finally:
            gauge.dec()
            with self._lock:
                self._waiters[key].discard(entry)
                if not self._waiters[key]:
                    del self._waiters[key]

    @property
    def open_streams(self) -> int:
        with self._lock:
            return sum(len(waiters) for waiters in self._waiters.values())

    def dispatch(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed: its stream is gone
                loop.call_soon_threadsafe(event.set)

    def wake_all(self) -> None:
        with self._lock:
            job_ids = list(self._waiters)
        for job_id in job_ids:
            self.dispatch(job_id)

    def _run(self) -> None:
        while not self._stop.is_set():
            client = None
            try:
                if not broker_reachable(self.service_url):
                    raise ConnectionError(f"nothing accepts connections at {self.service_url}")
                client = pulsar_client(self.service_url, timeout_s=CONNECT_TIMEOUT_S, auth_token=self.auth_token)
                # Non-durable: no subscription to clean up, and only notices from now on matter.
                reader = client.create_reader(self.topic, pulsar.MessageId.latest, receiver_queue_size=1000)
                self.ready.set()
                logger.info("listening for job updates on %s", self.topic)
                self.wake_all()  # notices sent while (re)connecting were missed: every stream looks again
                while not self._stop.is_set():
                    try:
                        message = reader.read_next(timeout_millis=500)
                    except pulsar.Timeout:
                        continue
                    self._handle(message.data())
            except ConnectionError as error:
                logger.warning("job update listener: %s; retrying in 2 s", error)
                self.ready.clear()
                self._stop.wait(2.0)
            except Exception:
                logger.warning("job update listener failed on %s; reconnecting in 2 s", self.topic, exc_info=True)
                self.ready.clear()
                self._stop.wait(2.0)
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()

    def _handle(self, payload: bytes) -> None:
        try:
            job_id = str(json.loads(payload)["job_id"])
        except (ValueError, KeyError, TypeError):
            logger.warning("malformed job update notice dropped: %r", payload[:200])
            return
        self.dispatch(job_id)


_hub: JobUpdateHub | None = None
_hub_lock = threading.Lock()


@atexit.register
def _close_at_exit() -> None:
    # A pulsar client still running its C++ threads when the interpreter ends aborts the
    # process ("terminate called without an active exception"): close them first.
    if _hub is not None:
        _hub.stop()
    close()


def hub() -> JobUpdateHub:
    """This process's hub, created (and its listener started) on first use."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = JobUpdateHub(
                service_url=settings.PULSAR_URL, topic=updates_topic(), auth_token=settings.PULSAR_AUTH_TOKEN
            )
        return _hub


def close() -> None:
    _announcer.close()
