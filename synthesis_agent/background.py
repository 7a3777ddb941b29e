"""Steps of lower-priority classes on a low-priority thread: the OS preempts them mid-chunk.

Between chunks the agent already switches to a more urgent job (scheduler.py), but a short job
that arrives while a long chunk is being decoded would still wait for that chunk, and would
share the cores with it once it runs. Here the agent hands a job of a background class (every
class below its top one) to one extra thread whose nice value is raised (Linux applies
`setpriority` per thread). That thread runs the job's steps one after another until the job's
run is done or the main thread asks it to stop; the main thread meanwhile blocks on the top
queue, so a short job is admitted the moment it arrives and runs on the main thread at normal
priority. The kernel gives it the CPU and the long chunk goes on with whatever is left: no core
idles, nothing is recomputed, and no busy polling costs the long job CPU.

The main thread publishes each step's events from the results it collects, in order, and acts
on a job's outcome only once the thread has stopped stepping it, so the agent's single-owner
model holds: every step result carries whether the run was done right after that step.

Raising a thread's nice value needs no privilege; lowering it back would, which is why the
thread keeps its value for life instead of switching per step.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

MAX_NICE = 19


def lower_this_thread(nice: int) -> None:
    """Set the calling thread's nice value (Linux: per thread); a warning where that is not possible."""
    if not hasattr(os, "setpriority"):
        logger.warning("this platform cannot lower a thread's priority; background steps run at normal priority")
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as error:
        logger.warning("could not set the background thread's nice value to %d: %s", nice, error)


def thread_nice(native_id: int) -> int:
    """The nice value of one thread of this process (Linux /proc), for tests and diagnostics."""
    with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat(5); [0] here is field 3, the state


class BackgroundSteps(Generic[J, R]):
    """Runs one job's steps on a thread with nice value `nice` until `finished(result)` or `pause()`.

    `in_flight` is that job from `start` until the thread has stopped and every result has been
    collected; only then may another job start.
    """

    def __init__(self, *, nice: int, name: str = "background-steps") -> None:
        if not 0 < nice <= MAX_NICE:
            raise ValueError(f"nice must be 1 to {MAX_NICE}, got {nice}")
        self.nice = nice
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name, initializer=lower_this_thread, initargs=(nice,)
        )
        self._job: J | None = None
        self._future: Future[None] | None = None
        self._results: queue.SimpleQueue[R] = queue.SimpleQueue()
        self._pause = threading.Event()

    @property
    def in_flight(self) -> J | None:
        return self._job

    @property
    def pausing(self) -> bool:
        return self._pause.is_set()

    def start(self, job: J, step: Callable[[], R], finished: Callable[[R], bool]) -> None:
        """Run `step()` repeatedly for `job` until a result is `finished` or `pause()` is called."""
        if self._job is not None:
            raise RuntimeError("a background job is already in flight")
        self._job = job
        self._pause.clear()

        def run() -> None:
            while True:
                result = step()
                self._results.put(result)
                if finished(result) or self._pause.is_set():
                    return

        # The caller's context variables (the agent id in every log record) go with the steps.
        self._future = self._executor.submit(contextvars.copy_context().run, run)

    def pause(self) -> None:
        """Stop after the step being computed (at once if none is); its result is still collected."""
        self._pause.set()

    def collect(self, timeout_s: float = 0.0) -> list[tuple[J, R]]:
        """The results so far, in order, waiting up to `timeout_s` for the first.

        A step's exception is raised here, in the caller's thread, after the results before it.
        """
        job, future = self._job, self._future
        if job is None or future is None:
            return []
        results: list[R] = []
        try:
            results.append(self._results.get(timeout=timeout_s) if timeout_s > 0 else self._results.get_nowait())
            while True:
                results.append(self._results.get_nowait())
        except queue.Empty:
            pass
        if future.done() and self._results.empty():
            self._job, self._future = None, None
            error = future.exception()
            if error is not None:
                if results:  # report these first; the error comes with the next call
                    self._job, self._future = job, future
                    return [(job, result) for result in results]
                raise error
        return [(job, result) for result in results]

    def close(self) -> None:
        """Stop after the current step, wait for it, and stop the thread (results are discarded)."""
        self._pause.set()
        self._executor.shutdown(wait=True)
        self._job, self._future = None, None
