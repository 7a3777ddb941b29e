"""Prometheus metrics of the agent: the names of docs/CONTRACTS.md, in a private registry.

The agent is one process, so it keeps its own registry instead of prometheus_client's
multiprocess mode: the dev stack exports PROMETHEUS_MULTIPROC_DIR for gunicorn, and an agent
writing its samples into that directory would mix them into the gateway's numbers.
"""

from __future__ import annotations

import os

# Must happen before prometheus_client picks its value class at import.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
INFO = Gauge(
    "tts_agent_info", "Constant 1, labelled with this agent", ["agent_id", "classes", "voice"], registry=REGISTRY
)

for _result in ("hit", "miss", "error"):
    CACHE_REQUESTS.labels(_result)  # export zeros so rate() works from the first scrape


def init_labels(length_classes: tuple[str, ...]) -> None:
    """Create the labelled series of the served classes at 0, so rate() works from the start."""
    for length_class in length_classes:
        for outcome in ("succeeded", "failed", "released"):
            JOBS.labels(length_class, outcome)
        for source in ("synthesized", "cache"):
            SENTENCES.labels(length_class, source)
        for reason in ("synthesis_error", "time_limit", "bad_message", "publish_error"):
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
