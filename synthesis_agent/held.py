"""A delivery the agent holds: its queue, its broker message and its run."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import pulsar

from tts_contracts import LENGTH_CLASSES, JobEvent

from .logs import job_context
from .pipeline import JobRun


@dataclass(eq=False)
class HeldJob:
    queue: str
    message: pulsar.Message
    run: JobRun
    received_at: float = field(default_factory=time.monotonic)
    counted: bool = False  # this delivery added one to the crash counter of its attempt
    progressed: bool = False  # this delivery synthesized a sentence no earlier one had cached
    # Events made but not yet sent (the `started` of a run, sent with its first step's events or
    # once it is overdue: worker.STARTED_SEND_AFTER_S), and when they were made.
    unsent: list[JobEvent] = field(default_factory=list)
    unsent_since: float = 0.0

    def hold_back(self, events: list[JobEvent]) -> None:
        self.unsent, self.unsent_since = [*self.unsent, *events], time.monotonic()

    def with_unsent(self, events: list[JobEvent]) -> list[JobEvent]:
        """The events held back, then `events`; nothing is held back after this."""
        ready, self.unsent = [*self.unsent, *events], []
        return ready

    @property
    def label(self) -> str:
        return self.run.length_class if self.run.length_class in LENGTH_CLASSES else self.queue

    @property
    def key(self) -> tuple[str, int] | None:
        return (self.run.job_id, self.run.attempt) if self.run.message is not None and self.run.job_id else None

    def context(self) -> AbstractContextManager[None]:
        return job_context(self.run.job_id, self.run.attempt, self.label, self.run.redelivery_count)
