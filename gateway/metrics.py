"""Prometheus metrics of the gateway web process and the event consumer (docs/CONTRACTS.md).

Gunicorn runs several workers: with PROMETHEUS_MULTIPROC_DIR set, prometheus_client writes
each process's values to files there and `metrics_view` aggregates them. The backlog gauge is
set from the database at scrape time (and by the relay), so "most recent" is the right value.
"""

from __future__ import annotations

import contextlib

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge, Histogram

# Seconds; short jobs finish in about a second, long ones in many minutes.
_JOB_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

JOBS_SUBMITTED = Counter("tts_gateway_jobs_submitted_total", "Jobs accepted (202).", ["length_class"])
JOBS_FINISHED = Counter(
    "tts_gateway_jobs_finished_total", "Jobs that reached a final state.", ["length_class", "status"]
)
JOB_LATENCY = Histogram(
    "tts_gateway_job_latency_seconds",
    "Queued to succeeded, end to end.",
    ["length_class"],
    buckets=_JOB_BUCKETS,
)
JOB_QUEUE_WAIT = Histogram(
    "tts_gateway_job_queue_wait_seconds", "Queued to started.", ["length_class"], buckets=_WAIT_BUCKETS
)
TIME_TO_FIRST_SEGMENT = Histogram(
    "tts_gateway_time_to_first_segment_seconds",
    "Queued to the first audio segment stored.",
    ["length_class"],
    buckets=_WAIT_BUCKETS,
)
OUTBOX_BACKLOG = Gauge(
    "tts_gateway_outbox_backlog",
    "Outbox records not yet confirmed by the broker.",
    multiprocess_mode="livemostrecent",
)
OUTBOX_PUBLISHED = Counter(
    "tts_gateway_outbox_published_total", "Job message publications (after commit and by the relay).", ["result"]
)
JOBS_REPUBLISHED = Counter(
    "tts_gateway_jobs_republished_total",
    "Job messages of stalled running jobs re-published by the watchdog.",
    ["length_class"],
)
EVENTS_APPLIED = Counter(
    "tts_gateway_events_applied_total", "Agent events handled by the consumer.", ["type", "result"]
)
EVENT_DEAD_LETTERS = Counter(
    "tts_gateway_event_dead_letters_total",
    "Events the consumer could not apply (database error after retries, a bug): stored as EventDeadLetter.",
    ["type"],
)
MEDIA_ORPHANS_REMOVED = Counter(
    "tts_gateway_media_orphans_removed_total", "Audio files no job refers to, removed by the sweep."
)
THROTTLE_UNAVAILABLE = Counter(
    "tts_gateway_throttle_unavailable_total",
    "Requests let through unthrottled because the rate-limit counters (the cache) failed.",
    ["scope"],
)
DEPENDENCY_UP = Gauge(
    "tts_gateway_dependency_up",
    "1 when /readyz last reached the dependency (database, broker, cache), else 0.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
OPEN_STREAMS = Gauge(
    "tts_gateway_open_streams",
    "Open long-lived responses (SSE job events, streaming audio) across the gateway's workers.",
    ["kind"],
    multiprocess_mode="livesum",
)
EVENT_LAG = Histogram(
    "tts_gateway_event_lag_seconds", "Event sent by the agent to applied by the consumer.", buckets=_LAG_BUCKETS
)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """django-prometheus's exporter (multiprocess-aware), with the backlog read at scrape time.

    Only for the monitoring network or the metrics token (403 otherwise).
    """
    from django_prometheus.exports import ExportToDjangoView

    from .monitoring_access import monitoring_allowed
    from .selectors import outbox_backlog_count

    if not monitoring_allowed(request):
        return HttpResponse(
            "metrics are only served to the monitoring network\n", status=403, content_type="text/plain"
        )

    # A scrape must still answer while the database is down.
    with contextlib.suppress(Exception):
        OUTBOX_BACKLOG.set(outbox_backlog_count())
    return ExportToDjangoView(request)
