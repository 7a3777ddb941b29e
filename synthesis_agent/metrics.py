"""Prometheus metrics of the agent: the names of docs/CONTRACTS.md, in a private registry, and the
one observer that turns the worker's lifecycle hooks into them (the worker touches no metric).

The agent is one process, so it keeps its own registry instead of prometheus_client's
multiprocess mode: the dev stack exports PROMETHEUS_MULTIPROC_DIR for gunicorn, and an agent
writing its samples into that directory would mix them into the gateway's numbers.
"""

from __future__ import annotations

import os

# Must happen before prometheus_client picks its value class at import.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from collections.abc import Mapping
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tts_contracts import LENGTH_CLASSES

from .observer import AgentObserver, CacheResult, ClaimResult, SentenceSource

REGISTRY = CollectorRegistry(auto_describe=True)

_SENTENCE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
_JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0)
_RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_FIRST_SEGMENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

JOBS = Counter("tts_agent_jobs_total", "Jobs finished by this agent", ["length_class", "outcome"], registry=REGISTRY)
SENTENCES = Counter("tts_agent_sentences_total", "Sentences delivered", ["length_class", "source"], registry=REGISTRY)
SENTENCE_SYNTHESIS_SECONDS = Histogram(
    "tts_agent_sentence_synthesis_seconds",
    "Wall time of one sentence's synthesis (cache misses only)",
    ["length_class"],
    buckets=_SENTENCE_BUCKETS,
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "tts_agent_job_seconds", "Start to last event of a job", ["length_class"], buckets=_JOB_BUCKETS, registry=REGISTRY
)
REALTIME_FACTOR = Histogram(
    "tts_agent_realtime_factor",
    "Synthesis seconds / audio seconds per job",
    ["length_class"],
    buckets=_RTF_BUCKETS,
    registry=REGISTRY,
)
QUEUE_WAIT_SECONDS = Histogram(
    "tts_agent_queue_wait_seconds",
    "Gateway submit to agent start",
    ["length_class"],
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)
TIME_TO_FIRST_SEGMENT_SECONDS = Histogram(
    "tts_agent_time_to_first_segment_seconds",
    "Agent start to first segment published",
    ["length_class"],
    buckets=_FIRST_SEGMENT_BUCKETS,
    registry=REGISTRY,
)
AUDIO_SECONDS = Counter("tts_agent_audio_seconds_total", "Audio produced", ["length_class"], registry=REGISTRY)
CACHE_REQUESTS = Counter(
    "tts_agent_cache_requests_total", "Sentence cache requests by result", ["result"], registry=REGISTRY
)
FAILURES = Counter("tts_agent_failures_total", "Job failures by reason", ["length_class", "reason"], registry=REGISTRY)
JOBS_IN_FLIGHT = Gauge(
    "tts_agent_jobs_in_flight", "Jobs being worked on (preempted ones included)", ["length_class"], registry=REGISTRY
)
BUSY = Gauge(
    "tts_agent_busy", "1 while this agent synthesizes a job of that class", ["length_class"], registry=REGISTRY
)
BUSY_SECONDS = Counter(
    "tts_agent_busy_seconds_total", "Seconds spent synthesizing", ["length_class"], registry=REGISTRY
)
PREEMPTIONS = Counter(
    "tts_agent_preemptions_total",
    "Jobs paused to serve a higher class, by the paused job's class",
    ["length_class"],
    registry=REGISTRY,
)
CLAIMS = Counter(
    "tts_agent_claims_total",
    "Claims of job deliveries by result (claimed, held_elsewhere, error = Redis unavailable)",
    ["result"],
    registry=REGISTRY,
)
INFO = Gauge(
    "tts_agent_info", "Constant 1, labelled with this agent", ["agent_id", "classes", "voice"], registry=REGISTRY
)

for _result in ("hit", "miss", "error"):
    CACHE_REQUESTS.labels(_result)  # export zeros so rate() works from the first scrape
for _result in ("claimed", "held_elsewhere", "error"):
    CLAIMS.labels(_result)

FAILURE_REASONS = ("synthesis_error", "time_limit", "bad_message", "publish_error", "agent_crashed_repeatedly")


def init_labels(length_classes: tuple[str, ...]) -> None:
    """Create the labelled series of the served classes at 0, so rate() works from the start."""
    for length_class in length_classes:
        for outcome in ("succeeded", "failed", "released", "ended"):
            JOBS.labels(length_class, outcome)
        for source in ("synthesized", "cache"):
            SENTENCES.labels(length_class, source)
        for reason in FAILURE_REASONS:
            FAILURES.labels(length_class, reason)
        BUSY.labels(length_class).set(0)
        JOBS_IN_FLIGHT.labels(length_class).set(0)
        BUSY_SECONDS.labels(length_class)
        AUDIO_SECONDS.labels(length_class)
        PREEMPTIONS.labels(length_class)


def serve(port: int) -> None:
    """Expose /metrics on `port` in a daemon thread (0 = off)."""
    if port:
        start_http_server(port, registry=REGISTRY)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample (0 when absent); for tests and logs."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


class PrometheusObserver(AgentObserver):
    """The agent's lifecycle hooks as the metrics of docs/CONTRACTS.md."""

    def on_ready(self, *, agent_id: str, classes: tuple[str, ...], voice: str) -> None:
        init_labels(classes)
        INFO.labels(agent_id, ",".join(classes), voice).set(1)

    def on_job_started(self, *, length_class: str, queue_wait_s: float | None) -> None:
        if queue_wait_s is not None:
            QUEUE_WAIT_SECONDS.labels(length_class).observe(queue_wait_s)

    def on_preempted(self, *, length_class: str) -> None:
        PREEMPTIONS.labels(length_class).inc()

    def on_step(
        self,
        *,
        length_class: str,
        busy_s: float,
        source: SentenceSource | None,
        synthesis_s: float,
        audio_s: float,
    ) -> None:
        BUSY_SECONDS.labels(length_class).inc(busy_s)
        if source is not None:
            SENTENCES.labels(length_class, source).inc()
            AUDIO_SECONDS.labels(length_class).inc(audio_s)
        if source == "synthesized":
            SENTENCE_SYNTHESIS_SECONDS.labels(length_class).observe(synthesis_s)

    def on_first_segment(self, *, length_class: str, seconds: float) -> None:
        TIME_TO_FIRST_SEGMENT_SECONDS.labels(length_class).observe(seconds)

    def on_job_finished(
        self,
        *,
        length_class: str,
        status: Literal["succeeded", "failed"],
        reason: str,
        job_s: float,
        synthesis_s: float,
        audio_s: float,
    ) -> None:
        JOBS.labels(length_class, status).inc()
        JOB_SECONDS.labels(length_class).observe(job_s)
        if status == "failed":
            FAILURES.labels(length_class, reason).inc()
        elif audio_s > 0 and synthesis_s > 0:
            REALTIME_FACTOR.labels(length_class).observe(synthesis_s / audio_s)

    def on_job_failed_delivery(self, *, length_class: str, reason: str) -> None:
        FAILURES.labels(length_class, reason).inc()

    def on_released(self, *, length_class: str) -> None:
        JOBS.labels(length_class, "released").inc()

    def on_job_ended_elsewhere(self, *, length_class: str) -> None:
        JOBS.labels(length_class, "ended").inc()

    def on_cache_request(self, *, result: CacheResult) -> None:
        CACHE_REQUESTS.labels(result).inc()

    def on_claim(self, *, result: ClaimResult) -> None:
        CLAIMS.labels(result).inc()

    def on_holding(self, *, running: str | None, in_flight: Mapping[str, int]) -> None:
        for length_class in LENGTH_CLASSES:
            BUSY.labels(length_class).set(1 if length_class == running else 0)
            JOBS_IN_FLIGHT.labels(length_class).set(in_flight.get(length_class, 0))
