"""Parallel windows: a sentence decoded on several threads equals its serial decoding."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vits import SynthesisParams, Voice
from vits.parallel import WindowWorkers
from vits.streaming import MIN_PARALLEL_FRAMES, parallel_window_count

from .test_chunks import LONG, MEDIUM, SHORT, ZERO

SEEDED = SynthesisParams(seed=11)


def with_workers(voice: Voice, count: int) -> Voice:
    """The same loaded model with `count` decode workers."""
    return Voice(voice.info, voice.settings, voice.model, voice.device, WindowWorkers(count))


def whole_decode(voice: Voice, sentence: str, params: SynthesisParams) -> np.ndarray:
    """The unwindowed decode: the model's own forward pass over the whole latent."""
    padded, lengths, kwargs = voice._model_inputs([voice.phoneme_ids(sentence)], voice.resolve_params(params))
    with torch.inference_mode():
        audio, _ = voice.model.infer(padded, lengths, **kwargs)  # type: ignore[arg-type]
    return audio[0].numpy()


@pytest.mark.parametrize("sentence", [SHORT, MEDIUM, LONG])
@pytest.mark.parametrize("params", [ZERO, SEEDED], ids=["zero-noise", "seeded"])
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_sentence_equals_the_whole_decode(
    voice: Voice, sentence: str, params: SynthesisParams, workers: int
) -> None:
    parallel = with_workers(voice, workers).synthesize_sentence(sentence, params).samples
    whole = whole_decode(voice, sentence, params)
    assert parallel.shape == whole.shape
    assert float(np.abs(parallel - whole).max()) <= 1e-4


@pytest.mark.parametrize("chunk_seconds", [0.03, 0.5, 1.0])
def test_parallel_chunks_equal_the_serial_ones_joined(voice: Voice, chunk_seconds: float) -> None:
    serial = with_workers(voice, 1).sentence_chunks(LONG, SEEDED, chunk_seconds=chunk_seconds)
    parallel = with_workers(voice, 2).sentence_chunks(LONG, SEEDED, chunk_seconds=chunk_seconds)
    serial_audio = np.concatenate([c.samples for c in serial])
    parallel_chunks = list(parallel)
    assert parallel.done and parallel.next_frame == parallel.total_frames == serial.total_frames
    parallel_audio = np.concatenate([c.samples for c in parallel_chunks])
    assert parallel_audio.shape == serial_audio.shape
    assert float(np.abs(parallel_audio - serial_audio).max()) <= 1e-4
    # Never longer than asked, and (for chunks above the minimum) an even number of windows, so
    # that no thread idles on a last one.
    frames = voice.chunk_frames(chunk_seconds)
    assert all(len(c) <= frames * 256 for c in parallel_chunks)
    assert len(parallel_chunks) % 2 == 0 or frames < MIN_PARALLEL_FRAMES


def test_a_parallel_window_is_computed_exactly_as_a_serial_one(voice: Voice) -> None:
    model = voice.model
    padded, lengths, kwargs = voice._model_inputs([voice.phoneme_ids(MEDIUM)], voice.resolve_params(ZERO))
    with torch.inference_mode():
        z_p, _, g = model.prior(padded, lengths, **kwargs)  # type: ignore[arg-type]
        z = model.latent(z_p, g)
    frames = int(z.shape[2])
    windows = [model.dec.plan_window(0, frames // 2, frames), model.dec.plan_window(frames // 2, frames, frames)]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # what the workers run at
    try:
        with torch.inference_mode():
            serial = [model.decode_window(z, w, g) for w in windows]
            parallel = WindowWorkers(2).map(lambda w: model.decode_window(z, w, g), windows)
    finally:
        torch.set_num_threads(previous)
    for one, other in zip(serial, parallel, strict=True):
        assert torch.equal(one, other)


def test_latent_window_equals_the_whole_flow_and_reads_only_its_reach(voice: Voice) -> None:
    model = voice.model
    assert model.flow_reach() == 32  # 4 coupling layers x 4 WaveNet layers of kernel 5 (medium voice)
    generator = torch.Generator().manual_seed(3)
    z_p = torch.randn(1, model.config.inter_channels, 300, generator=generator)
    with torch.inference_mode():
        whole = model.latent(z_p)
        for start, stop in [(0, 40), (40, 200), (200, 300), (0, 300)]:
            got = model.latent_window(z_p, start, stop)
            assert float((got - whole[:, :, start:stop]).abs().max()) <= 1e-4
        # A frame just inside the reach changes the window; one just outside does not.
        base = model.latent_window(z_p, 100, 150)
        for frame, inside in [(100 - 32, True), (100 - 33, False), (149 + 32, True), (149 + 33, False)]:
            changed = z_p.clone()
            changed[:, :, frame] += 1.0
            moved = float((model.latent_window(changed, 100, 150) - base).abs().max())
            assert (moved > 0) == inside, (frame, moved)
    with pytest.raises(ValueError, match="latent window"):
        model.latent_window(z_p, 10, 301)


def test_window_plan_counts() -> None:
    # A multiple of the worker count, each window at most a chunk, none cut below the minimum.
    assert parallel_window_count(430, 86, 2) == 6  # 5 windows of a chunk would leave one alone
    assert parallel_window_count(172, 86, 2) == 2
    assert parallel_window_count(40, 86, 2) == 2
    assert parallel_window_count(MIN_PARALLEL_FRAMES * 2 - 1, 86, 2) == 1  # too short to split
    assert parallel_window_count(200, 3, 2) == 67  # tiny chunks: the chunk size wins


def test_workers_run_single_threaded_in_inference_mode_and_wait_for_every_piece() -> None:
    workers = WindowWorkers(2)
    seen: list[tuple[str, int, bool]] = []

    def record(index: int) -> int:
        seen.append((threading.current_thread().name, torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return index * 10

    with torch.inference_mode():
        assert workers.map(record, [1, 2, 3]) == [10, 20, 30]
    pool_threads = [entry for entry in seen if entry[0].startswith("vits-window")]
    assert pool_threads and all(threads == 1 and inference for _, threads, inference in pool_threads)

    finished: list[int] = []

    def fail_first(index: int) -> int:
        if index == 0:
            raise RuntimeError("window 0 failed")
        finished.append(index)
        return index

    with pytest.raises(RuntimeError, match="window 0 failed"):
        workers.map(fail_first, [0, 1])
    assert finished == [1]  # the other piece ran to its end before the error was raised
    workers.close()
    with pytest.raises(ValueError, match="decode_workers"):
        WindowWorkers(0)


def test_load_spends_the_threads_on_workers_by_default() -> None:
    previous = torch.get_num_threads()
    try:
        parallel = Voice.load(threads=2)
        assert parallel.workers.count == 2 and torch.get_num_threads() == 1
        serial = Voice.load(threads=2, decode_workers=1)
        assert serial.workers.count == 1 and torch.get_num_threads() == 2
        assert Voice.load(threads=1).workers.count == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="decode_workers"):
            Voice.load(threads=2, decode_workers=0)
        with pytest.raises(ValueError, match="threads"):
            Voice.load(threads=0)
    finally:
        torch.set_num_threads(previous)


def test_next_chunks_computes_sentences_side_by_side_as_each_alone(voice: Voice) -> None:
    """Serial iterators advanced together, one per worker thread, give each sentence's own chunks."""
    two = with_workers(voice, 2)
    sentences = [MEDIUM, SHORT, LONG]
    alone = [np.concatenate([c.samples for c in two.sentence_chunks(s, SEEDED, parallel=False)]) for s in sentences]
    iterators = [two.sentence_chunks(s, SEEDED, parallel=False) for s in sentences]
    assert not any(chunks.parallel for chunks in iterators)
    parts: list[list[np.ndarray]] = [[] for _ in sentences]
    while not all(chunks.done for chunks in iterators):
        active = [index for index, chunks in enumerate(iterators) if not chunks.done]
        audios = two.next_chunks([iterators[index] for index in active])
        assert all(audio is not None for audio in audios)
        for index, audio in zip(active, audios, strict=True):
            parts[index].append(audio.samples)  # type: ignore[union-attr]
    for joined, expected in zip(parts, alone, strict=True):
        # Same windows; the caller's thread may run its operations at another intra-op count.
        audio = np.concatenate(joined)
        assert audio.shape == expected.shape
        assert float(np.abs(audio - expected).max()) <= 1e-4
    assert two.next_chunks([iterators[0]]) == [None]


@pytest.mark.parametrize("after_chunks", [0, 1, 3])
def test_a_serial_iterator_left_alone_goes_on_over_the_workers(voice: Voice, after_chunks: int) -> None:
    two = with_workers(voice, 2)
    expected = whole_decode(voice, LONG, SEEDED)
    chunks = two.sentence_chunks(LONG, SEEDED, chunk_seconds=0.5, parallel=False)
    parts = [next(chunks).samples for _ in range(after_chunks)]
    decoded_serially = chunks.next_frame
    assert not chunks.parallel
    while not chunks.done:
        (audio,) = two.next_chunks([chunks])  # alone: switched to parallel windows
        assert audio is not None
        parts.append(audio.samples)
    assert chunks.parallel and chunks.next_frame == chunks.total_frames
    assert decoded_serially == min(after_chunks * two.chunk_frames(0.5), chunks.total_frames or 0)
    joined = np.concatenate(parts)
    assert joined.shape == expected.shape
    assert float(np.abs(joined - expected).max()) <= 1e-4


@pytest.mark.skipif(not hasattr(__import__("os"), "setpriority"), reason="per-thread nice values are Linux's")
def test_work_runs_at_its_callers_nice_value() -> None:
    """A low-priority caller (the agent's background thread) gets workers at its own priority."""
    import os

    def nice_here(_: object = None) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    workers = WindowWorkers(2)
    seen: dict[str, list[int]] = {}

    def low_priority_caller() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 7)
        seen["low"] = [workers.submit(nice_here).result(), *workers.map(nice_here, [1, 2])]

    try:
        caller = threading.Thread(target=low_priority_caller)
        caller.start()
        caller.join()
        seen["normal"] = [workers.submit(nice_here).result(), *workers.map(nice_here, [1, 2])]
    finally:
        workers.close()
    assert seen["low"] == [7, 7, 7]
    assert seen["normal"] == [nice_here()] * 3


@pytest.mark.parametrize("sentence", [SHORT, MEDIUM, LONG])
def test_text_encoder_shared_by_workers_equals_one_thread(voice: Voice, sentence: str) -> None:
    """Bands of the feed-forward rows, each from the input rows it reads, join to the whole."""
    ids = torch.tensor([voice.phoneme_ids(sentence)])
    mask = torch.ones(1, 1, ids.shape[1])
    with torch.inference_mode():
        alone = voice.model.enc_p(ids, mask)
        shared = voice.model.enc_p(ids, mask, WindowWorkers(3))
    for one, other in zip(alone, shared, strict=True):
        assert one.shape == other.shape
        assert float((one - other).abs().max()) <= 1e-4


def test_feed_forward_bands_reproduce_the_sentence_edges() -> None:
    """Every band boundary, including ones next to the sentence's edges, as in the whole pass."""
    from vits.model.attentions import FFN

    torch.manual_seed(3)
    ffn = FFN(8, 16, 3)
    x = torch.randn(10, 8)
    with torch.inference_mode():
        whole = ffn.forward_rows(x)
        for start, stop in [(0, 1), (0, 4), (1, 9), (4, 10), (9, 10), (0, 10)]:
            assert torch.allclose(ffn._band(x, start, stop), whole[start:stop], atol=1e-6), (start, stop)
