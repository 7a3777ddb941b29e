"""The jobs the gateway has ended, as the agent learns them from the control topic.

Every agent reads every `JobEnded` notice (a reader, not a shared subscription). A job it holds
that ended stops within one sentence; a delivery of an ended job is acked unsynthesized. The set
is bounded: the oldest notices are forgotten first, by which time their messages are long gone.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 100_000


class EndedJobs:
    """job id -> the highest attempt that ended; an attempt at or below it is over."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._ended: OrderedDict[str, int] = OrderedDict()

    def add(self, job_id: str, attempt: int) -> None:
        self._ended[job_id] = max(attempt, self._ended.get(job_id, 0))
        self._ended.move_to_end(job_id)
        while len(self._ended) > self.capacity:
            self._ended.popitem(last=False)

    def __contains__(self, item: tuple[str, int]) -> bool:
        job_id, attempt = item
        return attempt <= self._ended.get(job_id, 0)

    def __len__(self) -> int:
        return len(self._ended)
