"""Lifecycle hooks of the agent loop. The worker calls them and never touches a metric: one
observer (`metrics.PrometheusObserver`) turns them into Prometheus series; tests may pass
another. Every hook has a no-op default so an observer implements only what it needs.

`length_class` is the job's class (or the queue's when the message was unreadable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

SentenceSource = Literal["cache", "synthesized"]
ClaimResult = Literal["claimed", "held_elsewhere", "error"]
CacheResult = Literal["hit", "miss", "error"]


class AgentObserver:
    def on_ready(self, *, agent_id: str, classes: tuple[str, ...], voice: str) -> None:
        """The agent is connected with its voice loaded and takes jobs from now on."""

    def on_job_started(self, *, length_class: str, queue_wait_s: float | None) -> None:
        """A delivery was admitted and parsed; `queue_wait_s` from the gateway's submit, if known."""

    def on_preempted(self, *, length_class: str) -> None:
        """A running job of `length_class` was paused for a job of a higher class."""

    def on_step(
        self,
        *,
        length_class: str,
        busy_s: float,
        source: SentenceSource | None,
        synthesis_s: float,
        audio_s: float,
    ) -> None:
        """One step of a job: `source` is None when no sentence was delivered (the run ended)."""

    def on_first_segment(self, *, length_class: str, seconds: float) -> None:
        """The first segment of a delivery was confirmed, `seconds` after it was received."""

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
        """The final event was confirmed and the message acked."""

    def on_job_failed_delivery(self, *, length_class: str, reason: str) -> None:
        """A delivery failed without ending the job (retried later, or its events not published)."""

    def on_released(self, *, length_class: str) -> None:
        """A job went back to the broker unfinished (shutdown, retry, publish failure)."""

    def on_job_ended_elsewhere(self, *, length_class: str) -> None:
        """A held or delivered job was dropped because the gateway had already ended it."""

    def on_cache_request(self, *, result: CacheResult) -> None:
        """A sentence cache lookup (`error`: the cache was unavailable; a failed write counts too)."""

    def on_claim(self, *, result: ClaimResult) -> None:
        """The outcome of claiming a delivery: `error` means Redis was unavailable (unclaimed)."""

    def on_holding(self, *, running: str | None, in_flight: Mapping[str, int]) -> None:
        """What the agent holds now: the running job's class and the jobs per class."""
