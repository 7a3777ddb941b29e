"""`SentenceChunks`: one sentence's audio, decoded window by window.

The text encoder, durations, noise and flow run once, on the first `next()` (the flow is cheap
next to the decoder, and windowing it would recompute its 30-odd frames of context per chunk).
Each `next()` after that decodes one window of the latent with the context its receptive field
needs (model/window.py), so the chunks joined equal whole-sentence decoding. Between two calls
the iterator holds only the latent: a caller can leave it for as long as it likes (to serve
more urgent work) and resume exactly where it stopped.

With `workers` of more than one thread (vits/parallel.py), the flow runs in that many pieces at
once on the first `next()`, and every decoding `next()` decodes the next `workers.count` windows
at once, one per thread, then hands them out one by one. The windows are then planned evenly
(the sentence cut into a multiple of `workers.count` windows of at most `chunk_frames` each)
so that no thread idles on a short last window.

With `first_chunk_early` (serial, batch 1), the first `next()` runs the flow only over the frames
the first window reads, decodes that window, and the flow over the rest runs on the second
`next()`: the first audio of a sentence a listener is waiting for comes about one flow pass
sooner (a few tens of ms on a long sentence), for one extra flow reach of context (32 frames).
Its samples equal the plain path's within float rounding, not bit for bit (the flow over a
shorter input rounds differently): a caller that needs one exact audio per sentence, like the
agent's sentence cache, must not mix the two.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from .audio import Audio
from .model import SynthesizerTrn
from .model.window import DecoderWindow
from .parallel import WindowWorkers

# About one second of audio per chunk: a preemption point every ~70 ms of 1-thread compute on a
# medium voice, while the windows' extra context stays a few percent of the work (README).
DEFAULT_CHUNK_SECONDS = 1.0
# Parallel windows are not cut shorter than this (about 0.19 s of audio): below it each window's
# fixed cost (Python, crops, small convolutions) eats what a second core wins.
MIN_PARALLEL_FRAMES = 16


def even_bounds(frames: int, parts: int) -> list[int]:
    """Boundaries of `parts` near-equal pieces of `frames` frames: [0, ..., frames]."""
    return [round(frames * i / parts) for i in range(parts + 1)]


def parallel_window_count(frames: int, chunk_frames: int, workers: int) -> int:
    """Windows for a sentence decoded `workers` at a time: each at most `chunk_frames` long, and
    rounded up to a multiple of `workers` unless that cuts windows below MIN_PARALLEL_FRAMES."""
    needed = -(-frames // chunk_frames)
    even = -(-needed // workers) * workers
    return max(needed, min(even, frames // MIN_PARALLEL_FRAMES))


class SentenceChunks:
    """Iterator of `Audio` chunks of one sentence; create it with `Voice.sentence_chunks`."""

    def __init__(
        self,
        model: SynthesizerTrn,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        prior_kwargs: dict[str, Any],
        *,
        chunk_frames: int,
        sample_rate: int,
        batch: int = 1,
        workers: WindowWorkers | None = None,
        first_chunk_early: bool = False,
    ) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self._model = model
        self._inputs: tuple[torch.Tensor, torch.Tensor, dict[str, Any]] | None = (ids, lengths, prior_kwargs)
        self.chunk_frames = chunk_frames
        self.sample_rate = sample_rate
        self.batch = batch
        # Batched windows run one pass on the calling thread; parallel ones one window per thread.
        self._workers = workers if workers is not None and workers.count > 1 and batch == 1 else None
        self._bounds: list[int] | None = None  # the even window plan of a parallel run
        self._first_chunk_early = first_chunk_early
        self._z: torch.Tensor | None = None
        self._z_p: torch.Tensor | None = None  # kept while the flow has run over the first window only
        self._g: torch.Tensor | None = None
        self._ready: deque[Audio] = deque()
        self.total_frames: int | None = None  # known after the first chunk
        self.next_frame = 0  # first latent frame not yet decoded

    def __iter__(self) -> SentenceChunks:
        return self

    @property
    def parallel(self) -> bool:
        """Each decoding `next()` runs several windows at once on the worker threads."""
        return self._workers is not None

    def use_workers(self, workers: WindowWorkers) -> None:
        """Decode the rest of the sentence `workers.count` windows at once.

        For an iterator made serial (to run beside other sentences, one per worker thread) that
        is left alone: its remaining windows are planned evenly over the workers. Joined, the
        chunks still equal the whole decode (any window plan does).
        """
        if self._workers is not None or workers.count < 2 or self.batch != 1:
            return
        if self.total_frames is None:  # not started: the flow runs in pieces too
            self._workers = workers
            return
        remaining = self.total_frames - self.next_frame
        if remaining <= 0:
            return
        count = parallel_window_count(remaining, self.chunk_frames, workers.count)
        self._bounds = [self.next_frame + bound for bound in even_bounds(remaining, count)]
        self._workers = workers

    @property
    def done(self) -> bool:
        return self.total_frames is not None and self.next_frame >= self.total_frames and not self._ready

    def _start(self) -> None:
        assert self._inputs is not None
        ids, lengths, kwargs = self._inputs
        with torch.inference_mode():
            z_p, _, g = self._model.prior(ids, lengths, **kwargs, workers=self._workers)
            frames = int(z_p.shape[2])
            first_reads = self._model.dec.plan_window(0, min(self.chunk_frames, frames), frames).input[1]
            if self._workers is None and self._first_chunk_early and self.batch == 1 and first_reads < frames:
                self._z = self._model.latent_window(z_p, 0, first_reads, g)
                self._z_p = z_p
            elif self._workers is None:
                self._z = self._model.latent(z_p, g)
            else:
                workers = self._workers.count
                count = parallel_window_count(frames, self.chunk_frames, workers)
                self._bounds = even_bounds(frames, count)
                pieces = even_bounds(frames, min(count, workers))
                model = self._model
                latents = self._workers.map(
                    lambda piece: model.latent_window(z_p, piece[0], piece[1], g), list(pairwise(pieces))
                )
                self._z = latents[0] if len(latents) == 1 else torch.cat(latents, dim=2)
        self._g = g
        self.total_frames = frames
        self._inputs = None  # the ids are no longer needed

    def _complete_latent(self) -> None:
        """Run the flow over the frames after the first window's input (first_chunk_early)."""
        assert self._z is not None and self._z_p is not None
        done = int(self._z.shape[2])
        with torch.inference_mode():
            rest = self._model.latent_window(self._z_p, done, int(self._z_p.shape[2]), self._g)
            # Joined as rows [frames, c]: the channels-last memory the decoder reads (model.latent).
            self._z = torch.cat([self._z[0].t(), rest[0].t()]).t().unsqueeze(0)
        self._z_p = None

    def _window(self, start: int) -> DecoderWindow:
        assert self.total_frames is not None
        stop = min(start + self.chunk_frames, self.total_frames)
        return self._model.dec.plan_window(start, stop, self.total_frames)

    def _decode_parallel(self) -> None:
        """Decode the next `workers.count` windows of the even plan at once, one per thread."""
        assert self._z is not None and self.total_frames is not None
        assert self._workers is not None and self._bounds is not None
        bounds = self._bounds
        first = bounds.index(self.next_frame)
        edges = bounds[first : first + self._workers.count + 1]
        windows = [self._model.dec.plan_window(start, stop, self.total_frames) for start, stop in pairwise(edges)]
        model, z, g = self._model, self._z, self._g
        with torch.inference_mode():
            outputs = self._workers.map(lambda window: model.decode_window(z, window, g), windows)
        for audio in outputs:
            samples = audio.float().cpu().numpy()
            self._ready.append(Audio(np.array(samples[0], dtype=np.float32), self.sample_rate))
        self.next_frame = windows[-1].stop

    def _decode_next(self) -> None:
        """Decode the next window, or the next `batch` windows of one shape as one batch."""
        assert self._z is not None and self.total_frames is not None
        if self._z_p is not None and self.next_frame > 0:
            self._complete_latent()
        if self._workers is not None:
            self._decode_parallel()
            return
        windows = [self._window(self.next_frame)]
        shape = windows[0].relative()
        while len(windows) < self.batch and windows[-1].stop < self.total_frames:
            following = self._window(windows[-1].stop)
            if following.relative() != shape:
                break  # the last window, or the first: clipped at a sentence edge
            windows.append(following)
        with torch.inference_mode():
            if len(windows) == 1:
                audio = self._model.decode_window(self._z, windows[0], self._g)
            else:
                # Same relative geometry: stack the input slices and crop them alike.
                z = torch.cat([self._z[:, :, w.input[0] : w.input[1]] for w in windows])
                g = None if self._g is None else self._g.expand(len(windows), -1, -1)
                audio = self._model.decode_window(z, shape, g)
        samples = audio.float().cpu().numpy()
        for row in range(len(windows)):
            self._ready.append(Audio(np.array(samples[row], dtype=np.float32), self.sample_rate))
        self.next_frame = windows[-1].stop

    def __next__(self) -> Audio:
        if self._ready:
            return self._ready.popleft()
        if self._inputs is not None:
            self._start()
        if self.done:
            raise StopIteration
        self._decode_next()
        return self._ready.popleft()
