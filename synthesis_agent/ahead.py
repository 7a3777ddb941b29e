"""A job's sentences computed side by side on the voice's threads, delivered in order.

A voice with several decode workers (`parallel_sentences` > 1, `submit`) can decode one
sentence's windows in parallel, but the text encoder and durations of each sentence run on one
core while the others wait: a quarter of the wall time at 2 threads. Whole sentences side by
side keep every core busy. The run's own thread (each `step()`) and the voice's spare worker
threads each compute a different sentence of the next few, chunk by chunk at intra-op 1; the run
delivers the first one once it is complete, whoever computed it. A sentence left alone (nothing
else to compute beside it) is spread over all the threads instead (`advance(spread=True)`).

A worker that completes its sentence goes on at once with the next one the board has prepared
(`_follow_on`), instead of idling until the run's next step hands it one: on the long text at 2
threads a worker thread otherwise idled about 0.9 s of a 7.7 s pass, mostly while the run's
own thread spent a step starting a sentence (encoder, durations, flow: 0.2-0.4 s). The board
prepares sentences (cache read, phonemes) on the run's thread only; a worker only takes one
that neither another worker nor the run's own thread is computing.

Preemption stays at chunk granularity: every `grant()` (one per step of the run) lets each
worker compute at most four chunks more, whichever sentences they are of, so a paused run stops
computing within four chunks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .sentence import SentenceSynthesis
from .voice import VoiceLike

logger = logging.getLogger(__name__)

# Chunks a worker may compute past the run's last step, so that it does not idle while the run's
# own thread spends one step on a long chunk (a sentence's encoder, durations and flow), and
# stops soon after the run pauses. On the long text at 2 threads: 1.76 cores busy with 2, 1.87
# with 4 (RTF 0.033 -> 0.031, Zen 5). On Zen 4, 8 and 16 were slower than 4 (6.4-7.2 s against
# 5.9-6.2 s a pass): more sentences in flight cost more CPU (11.9-13.1 s against 10.9-11.4).
MAX_CREDITS = 4
# How far past the sentence to deliver next the threads may run.
MAX_SENTENCES_AHEAD = 8


def spare_workers(voice: VoiceLike) -> int:
    """Threads beside the caller's on which the voice computes other sentences (0: none)."""
    if getattr(voice, "submit", None) is None or getattr(voice, "sentence_chunks", None) is None:
        return 0
    return max(0, int(getattr(voice, "parallel_sentences", 1)) - 1)


class _Worker:
    """Sentences computed on a worker thread while it has credits: `index` first, then whatever
    the board hands it when that one is complete (`SentenceBoard._follow_on`)."""

    def __init__(self, voice: Any, board: SentenceBoard, index: int, synthesis: SentenceSynthesis) -> None:
        self._board = board
        self.index = index
        self.synthesis = synthesis
        self._credits = MAX_CREDITS
        self.stopping = False
        self._lock = threading.Lock()
        self.future: Future[None] = voice.submit(self._run)

    def grant(self) -> None:
        with self._lock:
            self._credits = min(MAX_CREDITS, self._credits + 1)

    def stop(self) -> None:
        """Compute no chunk after the one in progress; wait for it (its error is raised here)."""
        with self._lock:
            self.stopping = True
        self.future.result()

    def _run(self) -> None:
        while True:
            # Outside this worker's lock: the board takes its own lock, and holds it to grant.
            if self.synthesis.done and not self._board._follow_on(self):
                return
            with self._lock:
                if self.stopping or self._credits == 0:
                    return
                self._credits -= 1
            self.synthesis.advance()


class SentenceBoard:
    """The next sentences of a run in progress (see the module docstring).

    `start(index)` makes the synthesis of sentence `index` for computing ahead, or returns None
    to leave the sentence to its own turn (found in the cache, or its input fails: the run
    handles that when the sentence is next to deliver). The sentence next to deliver is added by
    the run itself (`adopt`), so that its errors take the run's usual path.
    """

    def __init__(
        self,
        voice: VoiceLike,
        start: Callable[[int], SentenceSynthesis | None],
        *,
        sentence_count: int,
        workers: int,
    ) -> None:
        self._voice = voice
        self._start = start
        self._count = sentence_count
        self._max_workers = workers
        self._syntheses: dict[int, SentenceSynthesis] = {}
        self._left: set[int] = set()  # sentences `start` declined
        self._workers: dict[int, _Worker] = {}
        self._here: int | None = None  # the sentence the run's own thread computes in this step
        # Guards `_syntheses`, `_workers` and `_here` against the workers' `_follow_on` (`_left` is
        # the run's thread's alone).
        self._lock = threading.Lock()

    @property
    def computing(self) -> bool:
        """A worker is computing (or may go on computing) a sentence."""
        return bool(self._workers)

    def get(self, index: int) -> SentenceSynthesis | None:
        return self._syntheses.get(index)

    def adopt(self, index: int, synthesis: SentenceSynthesis) -> None:
        with self._lock:
            self._syntheses[index] = synthesis

    def in_progress(self, index: int) -> bool:
        synthesis = self._syntheses.get(index)
        return synthesis is not None and synthesis.chunks_done > 0 and not synthesis.done

    def _reach(self, first: int) -> range:
        return range(first, min(self._count, first + MAX_SENTENCES_AHEAD + 1))

    def _prepare(self, first: int) -> None:
        """Start the sentences within reach from `first` that are not on the board yet. On the
        run's thread (the only one that adds sentences) and outside the lock: a start reads the
        cache and runs the front end, and a worker following on must not wait for that."""
        for index in self._reach(first):
            if index in self._syntheses or index in self._left:
                continue
            synthesis = self._start(index)
            if synthesis is None:
                self._left.add(index)
                continue
            with self._lock:
                self._syntheses[index] = synthesis

    def _candidates(self, first: int) -> list[tuple[int, SentenceSynthesis]]:
        """Prepared, unfinished sentences from `first` on (within reach) that no worker holds, in
        order. Under the lock."""
        found = []
        for index in self._reach(first):
            if index in self._workers or index in self._left:
                continue
            synthesis = self._syntheses.get(index)
            if synthesis is not None and not synthesis.done:
                found.append((index, synthesis))
        return found

    def grant(self, head: int) -> None:
        """A step of the run, which delivers sentence `head` next: running workers may compute
        more, idle ones take the following sentences. Raises the error of a chunk that failed on
        a worker."""
        with self._lock:
            self._here = head  # until `pick` says otherwise: the run's thread keeps the sentence it delivers next
            ended = []
            for index, worker in list(self._workers.items()):
                if worker.future.done():
                    del self._workers[index]
                    ended.append(worker)
                else:
                    worker.grant()
        for worker in ended:
            worker.future.result()  # outside the lock: a failed chunk's error ends the step here
        if len(self._workers) >= self._max_workers:
            return  # every worker busy: `pick` prepares the sentences they may follow on with
        self._prepare(head + 1)
        with self._lock:
            for index, synthesis in self._candidates(head + 1):
                if len(self._workers) >= self._max_workers:
                    break
                if not synthesis.spread:  # a spread sentence's windows already use the workers
                    self._workers[index] = _Worker(self._voice, self, index, synthesis)

    def pick(self, head: int) -> SentenceSynthesis | None:
        """What the run's own thread computes now: the first unfinished sentence from `head` that
        no worker holds (None: the workers hold them all)."""
        self._prepare(head)
        with self._lock:
            candidates = self._candidates(head)
            if not candidates:
                return None
            self._here = candidates[0][0]
            return candidates[0][1]

    def release(self, index: int) -> SentenceSynthesis | None:
        """Stop the worker on sentence `index` after its chunk in progress (raises that chunk's
        error); the run's own thread then holds the sentence for this step."""
        with self._lock:
            worker = self._workers.pop(index, None)
            if worker is not None:
                worker.stopping = True  # takes no other sentence meanwhile (`_follow_on`)
            self._here = index
            synthesis = self._syntheses.get(index)
        if worker is not None:
            worker.stop()
        return synthesis

    def take(self, index: int) -> SentenceSynthesis | None:
        """Sentence `index`, no longer on the board (its worker stopped first)."""
        self.release(index)
        with self._lock:
            return self._syntheses.pop(index, None)

    def _follow_on(self, worker: _Worker) -> bool:
        """On `worker`'s thread, its sentence complete: hand it the first prepared sentence that
        nobody computes. False when there is none (the worker ends; the next step starts another)."""
        with self._lock:
            if worker.stopping:
                return False
            for index in sorted(self._syntheses):
                synthesis = self._syntheses[index]
                if index in self._workers or index == self._here or synthesis.done or synthesis.spread:
                    continue
                if self._workers.get(worker.index) is worker:
                    del self._workers[worker.index]
                self._workers[index] = worker
                worker.index, worker.synthesis = index, synthesis
                return True
            return False

    def stop(self) -> None:
        """Stop every worker after its chunk in progress (a run that ends early).

        Their work is thrown away, so a chunk's error is only logged.
        """
        with self._lock:
            workers, self._workers = dict(self._workers), {}
            for worker in workers.values():
                worker.stopping = True
        for index, worker in workers.items():
            try:
                worker.stop()
            except Exception:
                logger.warning("sentence %d, computed ahead and no longer needed, failed", index, exc_info=True)
