"""Which admitted job runs the next sentence: pure, no I/O, no clock.

The agent serves its queues in priority order (short, medium, long; one `fifo` queue in the
baseline mode). It admits a job only when it is idle or when the job comes from a queue of
strictly higher priority than the job it is running (it polls those queues between
sentences). The highest-priority admitted job runs; within a queue, first admitted first
served. A paused job keeps its progress in its own object, so it resumes exactly where it
stopped once every higher job is done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

J = TypeVar("J")


class Scheduler(Generic[J]):
    def __init__(self, queues: Sequence[str]) -> None:
        if not queues:
            raise ValueError("a scheduler needs at least one queue")
        self.queues: tuple[str, ...] = tuple(queues)
        self._jobs: dict[str, deque[J]] = {queue: deque() for queue in self.queues}

    def _rank(self, queue: str) -> int:
        try:
            return self.queues.index(queue)
        except ValueError:
            raise ValueError(f"unknown queue {queue!r}; this scheduler serves {self.queues}") from None

    def admit(self, queue: str, job: J) -> J | None:
        """Add a job; returns the running job it preempts (one of a lower queue), if any."""
        rank = self._rank(queue)
        running = self.current()
        self._jobs[queue].append(job)
        if running is not None and self._rank(running[0]) > rank:
            return running[1]
        return None

    def current(self) -> tuple[str, J] | None:
        """The job that runs the next sentence: the oldest of the highest-priority queue."""
        for queue in self.queues:
            if self._jobs[queue]:
                return queue, self._jobs[queue][0]
        return None

    def queues_to_poll(self) -> tuple[str, ...]:
        """Queues worth receiving from now: all when idle, else only those above the running job.

        Never the running job's own queue or lower ones: receiving would only move a message
        from the broker into this busy agent, where it waits instead of going to an idle one.
        """
        running = self.current()
        if running is None:
            return self.queues
        return self.queues[: self._rank(running[0])]

    def finish(self, job: J) -> None:
        """Remove a job that is done (completed, failed or released)."""
        for queue in self.queues:
            jobs = self._jobs[queue]
            for index, candidate in enumerate(jobs):
                if candidate is job:
                    del jobs[index]
                    return
        raise ValueError("job is not admitted")

    def paused(self) -> list[tuple[str, J]]:
        """Admitted jobs other than the running one, in priority order."""
        return list(self)[1:]

    def __iter__(self) -> Iterator[tuple[str, J]]:
        for queue in self.queues:
            for job in self._jobs[queue]:
                yield queue, job

    def __len__(self) -> int:
        return sum(len(jobs) for jobs in self._jobs.values())
