"""Several decoder windows of one sentence at once, each on its own thread at torch intra-op 1.

Torch's intra-op parallelism splits every operation of one window across the cores and scales
poorly on this model (2 AMD EPYC cores, one loaded run: RTF 0.122 at 1 thread, 0.102 at 2,
while onnxruntime went 0.105 -> 0.065; vits README, "Parallel windows"). Once the flow has
produced a sentence's latent, its decoder windows are independent (model/window.py), and
torch releases the GIL inside its operations: two Python threads each decoding one window
with single-threaded operations keep two cores busy with no synchronisation inside the
convolutions. The flow is split the same way, each piece with its receptive field
(`SynthesizerTrn.latent_window`); only the text encoder and the durations stay serial.

The calling thread does the first piece of work itself and `count - 1` pool threads do the
rest, so a single-threaded caller pays no thread hand-off and several callers can share a voice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


def _single_threaded_worker(nice: int | None) -> None:
    # Each worker runs its operations on its own thread; torch's pool would add threads per op.
    torch.set_num_threads(1)
    if nice is not None and nice != _thread_nice():
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError as error:  # lowering a nice value needs privilege
            logger.warning("decode worker could not take its caller's nice value %d: %s", nice, error)


def _thread_nice() -> int | None:
    """The calling thread's nice value (Linux sets it per thread), None where unknown."""
    if not hasattr(os, "getpriority"):
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except OSError:
        return None


class WindowWorkers:
    """Runs independent pieces of one sentence (flow pieces, decoder windows) on `count` threads."""

    def __init__(self, count: int) -> None:
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"decode_workers must be an integer >= 1, got {count!r}")
        self.count = count
        # One pool per caller nice value: work for a low-priority caller (the agent's background
        # thread, nice 19) runs at its priority and never delays a normal caller's pieces.
        self._pools: dict[int | None, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        nice = _thread_nice()
        with self._lock:
            pool = self._pools.get(nice)
            if pool is None:
                pool = self._pools[nice] = ThreadPoolExecutor(
                    self.count - 1,
                    thread_name_prefix="vits-window" if not nice else f"vits-window-nice{nice}",
                    initializer=_single_threaded_worker,
                    initargs=(nice,),
                )
            return pool

    def map(self, work: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """`[work(item) for item in items]`, at most `count` at a time; the first in this thread.

        Every submitted piece is waited for before an error is raised, so no piece of a failed
        call still runs on the caller's tensors afterwards. The first error is re-raised.
        """
        if self.count == 1 or len(items) <= 1:
            return [work(item) for item in items]
        pool = self._executor()
        futures: list[Future[Result]] = [pool.submit(_in_inference_mode, work, item) for item in items[1:]]
        first: Result | None = None
        error: BaseException | None = None
        try:
            first = work(items[0])
        except BaseException as caught:  # re-raised below, once the other pieces have finished
            error = caught
        results: list[Result] = []
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as caught:  # every future must be waited for
                if error is None:
                    error = caught
                else:
                    logger.error("a parallel window also failed: %r", caught)
        if error is not None:
            raise error
        return [first, *results]  # type: ignore[list-item]

    def submit(self, work: Callable[[], Result]) -> Future[Result]:
        """Run `work` on a worker thread (at intra-op 1, in inference mode); needs `count` > 1.

        For work beside the caller's own: the caller goes on while it runs.
        """
        if self.count == 1:
            raise RuntimeError("submit() needs a worker thread besides the caller (count > 1)")
        return self._executor().submit(_call_in_inference_mode, work)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)


def _in_inference_mode(work: Callable[[Item], Result], item: Item) -> Result:
    # Inference mode is per thread: the caller's does not reach the pool's threads.
    with torch.inference_mode():
        return work(item)


def _call_in_inference_mode(work: Callable[[], Result]) -> Result:
    with torch.inference_mode():
        return work()


def default_decode_workers(threads: int, device: torch.device) -> int:
    """One window per core on the CPU (each at intra-op 1); one on an accelerator."""
    return threads if device.type == "cpu" else 1
