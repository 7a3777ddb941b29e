"""Steps of lower-priority classes on a low-priority thread: the OS preempts them mid-chunk.

Between chunks the agent already switches to a more urgent job (scheduler.py), but a short job
that arrives while a long chunk is being decoded would still wait for that chunk, and would
share the cores with it once it runs. Here the agent's main thread hands each step of a
background class (every class below its top one) to one extra thread whose nice value is
raised (Linux applies `setpriority` per thread), and keeps polling while it runs. A short job
admitted meanwhile runs on the main thread at normal priority, at once; the kernel gives it the
CPU and the long chunk goes on with whatever is left, so no core idles and nothing is
recomputed. Only one step is in flight on this thread at a time, and the main thread touches a
job's run only after its step has come back, so the agent's single-owner model holds.

Raising a thread's nice value needs no privilege; lowering it back would, which is why the
thread keeps its value for life instead of switching per step.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

MAX_NICE = 19


def lower_this_thread(nice: int) -> bool:
    """Set the calling thread's nice value (Linux: per thread); False where that is not possible."""
    if not hasattr(os, "setpriority"):
        logger.warning("this platform cannot lower a thread's priority; background steps run at normal priority")
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as error:
        logger.warning("could not set the background thread's nice value to %d: %s", nice, error)
        return False
    return True


def thread_nice(native_id: int) -> int:
    """The nice value of one thread of this process (Linux /proc), for tests and diagnostics."""
    with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat(5); [0] here is field 3, the state


class BackgroundSteps(Generic[J, R]):
    """At most one step in flight on a thread with nice value `nice`; its job is `in_flight`."""

    def __init__(self, *, nice: int, name: str = "background-steps") -> None:
        if not 0 < nice <= MAX_NICE:
            raise ValueError(f"nice must be 1 to {MAX_NICE}, got {nice}")
        self.nice = nice
        self.native_id: int | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=self._initialize)
        self._job: J | None = None
        self._future: Future[R] | None = None

    def _initialize(self) -> None:
        self.native_id = threading.get_native_id()
        lower_this_thread(self.nice)

    @property
    def in_flight(self) -> J | None:
        return self._job

    def submit(self, job: J, step: Callable[[], R]) -> None:
        if self._job is not None:
            raise RuntimeError("a background step is already in flight")
        self._job = job
        # The caller's context variables (the agent id in every log record) go with the step.
        self._future = self._executor.submit(contextvars.copy_context().run, step)

    def collect(self, timeout_s: float = 0.0) -> tuple[J, R] | None:
        """The finished step's job and result, waiting up to `timeout_s`; None while it runs.

        The step's exception, if it raised, is raised here, in the caller's thread.
        """
        future, job = self._future, self._job
        if future is None or not wait([future], timeout=timeout_s).done:
            return None
        assert job is not None
        self._job, self._future = None, None
        return job, future.result()

    def close(self) -> None:
        """Wait for the step in flight, if any, and stop the thread (its result is discarded)."""
        self._executor.shutdown(wait=True)
        self._job, self._future = None, None
