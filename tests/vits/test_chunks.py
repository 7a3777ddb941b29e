"""Chunked decoding: the chunks of a sentence joined equal its whole-sentence audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vits import SynthesisParams, Voice
from vits.model import GeneratorConfig
from vits.model.generator import Generator
from vits.model.window import context_frames

ZERO = SynthesisParams(noise_scale=0.0, noise_w=0.0)
SHORT = "Yes."
MEDIUM = "The committee will publish its final report on the new railway line early next spring."
LONG = (
    "When the old lighthouse keeper finally retired after forty years of service, the villagers gathered "
    "on the pier with lanterns and songs, and they told stories about storms and shipwrecks and rescues "
    "until the tide came in and the children had fallen asleep in their parents' arms."
)


def joined(voice: Voice, sentence: str, params: SynthesisParams, **kwargs: object) -> tuple[np.ndarray, list[int]]:
    chunks = list(voice.sentence_chunks(sentence, params, **kwargs))  # type: ignore[arg-type]
    return np.concatenate([c.samples for c in chunks]), [len(c) for c in chunks]


@pytest.mark.parametrize("sentence", [SHORT, MEDIUM, LONG])
@pytest.mark.parametrize("chunk_seconds", [0.03, 0.5, 1.0, 1.5])
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_chunks_equal_whole_sentence_at_zero_noise(
    voice: Voice, serial_voice: Voice, sentence: str, chunk_seconds: float, parallel: bool
) -> None:
    whole = serial_voice.synthesize_sentence(sentence, ZERO).samples
    got, sizes = joined(voice if parallel else serial_voice, sentence, ZERO, chunk_seconds=chunk_seconds)
    assert got.shape == whole.shape
    assert float(np.abs(got - whole).max()) <= 1e-4
    frames = voice.chunk_frames(chunk_seconds)
    if parallel:  # windows planned evenly (vits/streaming.py), never longer than a chunk
        assert all(0 < size <= frames * 256 for size in sizes)
    else:
        assert all(size == frames * 256 for size in sizes[:-1]) and 0 < sizes[-1] <= frames * 256


def test_short_sentence_is_one_chunk_and_long_one_many(serial_voice: Voice) -> None:
    voice = serial_voice
    assert len(joined(voice, SHORT, ZERO, chunk_seconds=1.0)[1]) == 1
    long_audio = voice.synthesize_sentence(LONG, ZERO)
    assert long_audio.duration_s > 12  # "very long": many windows
    assert len(joined(voice, LONG, ZERO, chunk_seconds=1.0)[1]) >= 12


def test_chunks_equal_whole_sentence_with_seeded_noise(voice: Voice) -> None:
    params = SynthesisParams(seed=7)
    whole = voice.synthesize_sentence(MEDIUM, params).samples
    got, _ = joined(voice, MEDIUM, params, chunk_seconds=0.5)
    assert got.shape == whole.shape
    assert float(np.abs(got - whole).max()) <= 1e-4


@pytest.mark.parametrize("batch", [2, 4])
def test_batched_chunks_equal_whole_sentence(voice: Voice, batch: int) -> None:
    whole = voice.synthesize_sentence(LONG, ZERO).samples
    got, sizes = joined(voice, LONG, ZERO, chunk_seconds=0.5, batch=batch)
    assert got.shape == whole.shape and len(sizes) > batch
    assert float(np.abs(got - whole).max()) <= 1e-4


@pytest.mark.parametrize("sentence", [SHORT, MEDIUM, LONG])
@pytest.mark.parametrize("chunk_seconds", [0.5, 1.0])
@pytest.mark.parametrize("params", [ZERO, SynthesisParams(seed=11)], ids=["zero-noise", "seeded"])
def test_first_chunk_early_equals_whole_sentence(
    serial_voice: Voice, sentence: str, chunk_seconds: float, params: SynthesisParams
) -> None:
    whole = serial_voice.synthesize_sentence(sentence, params).samples
    got, _ = joined(serial_voice, sentence, params, chunk_seconds=chunk_seconds, parallel=False, first_chunk_early=True)
    assert got.shape == whole.shape
    assert float(np.abs(got - whole).max()) <= 1e-4


def test_first_chunk_early_runs_the_flow_for_the_first_window_first(
    serial_voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = serial_voice.model
    flow_frames: list[int] = []
    real_latent = model.latent

    def latent(z_p: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        flow_frames.append(int(z_p.shape[2]))
        return real_latent(z_p, g)

    monkeypatch.setattr(model, "latent", latent)
    chunks = serial_voice.sentence_chunks(LONG, ZERO, chunk_seconds=1.0, parallel=False, first_chunk_early=True)
    next(chunks)
    assert len(flow_frames) == 1  # the first chunk needed the flow over its own window only
    total = chunks.total_frames
    assert total is not None and flow_frames[0] < total // 4
    rest = list(chunks)
    assert len(rest) >= 10 and len(flow_frames) == 2  # the rest of the flow ran once, on the second chunk
    # Beyond the whole sentence, only the flow's context on either side of the cut is recomputed.
    assert total < sum(flow_frames) <= total + 4 * model.flow_reach()


def test_first_chunk_early_then_spread_over_workers_equals_whole_sentence(voice: Voice, serial_voice: Voice) -> None:
    whole = serial_voice.synthesize_sentence(LONG, ZERO).samples
    chunks = voice.sentence_chunks(LONG, ZERO, chunk_seconds=1.0, parallel=False, first_chunk_early=True)
    first = next(chunks)
    chunks.use_workers(voice.workers)  # as the agent does when the sentence is left to run alone
    got = np.concatenate([first.samples, *(c.samples for c in chunks)])
    assert got.shape == whole.shape
    assert float(np.abs(got - whole).max()) <= 1e-4


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_suspend_and_resume_recomputes_nothing_but_the_overlap(
    voice: Voice, serial_voice: Voice, parallel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = voice if parallel else serial_voice
    model = voice.model
    priors: list[int] = []
    inputs: list[int] = []
    real_prior, real_window = model.prior, model.decode_window

    def prior(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        priors.append(1)
        return real_prior(*args, **kwargs)  # type: ignore[arg-type]

    def decode_window(z, window, g=None):  # type: ignore[no-untyped-def]
        inputs.append(window.input[1] - window.input[0])
        return real_window(z, window, g)

    monkeypatch.setattr(model, "prior", prior)
    monkeypatch.setattr(model, "decode_window", decode_window)
    long_chunks = voice.sentence_chunks(LONG, ZERO, chunk_seconds=1.0)
    first = [next(long_chunks), next(long_chunks)]
    # Suspended: other work runs on the same voice meanwhile.
    other = list(voice.sentence_chunks(MEDIUM, ZERO))
    rest = list(long_chunks)
    assert next(iter(long_chunks), None) is None and long_chunks.done
    assert len(priors) == 2  # once per sentence, not per chunk or per resume
    assert len(other) >= 2
    # Every latent frame is decoded once, plus at most the receptive field on each side per chunk.
    total = long_chunks.total_frames
    assert total is not None
    left, right = context_frames(model.dec.plan_window(100, 186, total))
    chunks = len(first) + len(rest)
    assert sum(inputs[:2] + inputs[-len(rest) :]) <= total + (left + right) * chunks
    got = np.concatenate([c.samples for c in first + rest])
    np.testing.assert_allclose(got, serial_voice.synthesize_sentence(LONG, ZERO).samples, atol=1e-4)


def test_input_errors_are_raised_before_any_chunk(voice: Voice) -> None:
    from vits.errors import ParameterError, UnspeakableTextError

    with pytest.raises(ParameterError):
        voice.sentence_chunks(MEDIUM, SynthesisParams(length_scale=9))
    with pytest.raises(UnspeakableTextError):
        voice.sentence_chunks("...")
    with pytest.raises(ValueError, match="chunk_seconds"):
        voice.sentence_chunks(MEDIUM, chunk_seconds=0)
    with pytest.raises(ValueError, match="batch"):
        voice.sentence_chunks(MEDIUM, batch=0)


def _tiny_generator(resblock: str) -> Generator:
    torch.manual_seed(0)
    config = GeneratorConfig(
        resblock=resblock,
        resblock_kernel_sizes=(3, 7),
        resblock_dilation_sizes=((1, 3, 5), (1, 2, 4)) if resblock == "1" else ((1, 2), (3, 5)),
        upsample_rates=(4, 2),
        upsample_initial_channel=16,
        upsample_kernel_sizes=(8, 4),
    )
    gen = Generator(6, config).eval()
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=0.3)
    # A small last layer keeps tanh out of saturation, and float64 keeps the smallest
    # contributions (products of many edge taps) visible: every dependency shows.
    torch.nn.init.normal_(gen.conv_post.weight, std=1e-3)
    gen = gen.double()
    gen.prepare()
    return gen


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_receptive_field_is_exact(resblock: str) -> None:
    """The planned input is what the window reads: a change just outside it changes nothing
    and a change at its first or last frame changes the window's output."""
    gen = _tiny_generator(resblock)
    frames, start, stop = 120, 50, 60
    plan = gen.plan_window(start, stop, frames)
    lo, hi = plan.input
    assert 0 < lo < start and stop < hi < frames
    z = torch.randn(1, 6, frames, dtype=torch.float64)
    hop = 8
    with torch.inference_mode():
        base = gen(z)[0, 0, start * hop : stop * hop]
        window = gen(z[:, :, lo:hi], window=plan)[0, 0]
        assert float((window - base).abs().max()) < 1e-12
        for frame, inside in ((lo - 1, False), (lo, True), (hi - 1, True), (hi, False)):
            bumped = z.clone()
            bumped[:, :, frame] += 5.0
            changed = float((gen(bumped)[0, 0, start * hop : stop * hop] - base).abs().max())
            assert (changed > 0) == inside, (frame, changed)


def test_every_weight_follows_the_device(voice: Voice) -> None:
    """On the meta device (shapes only, no data): parameters, the decoder's prepared weight
    copies and the model inputs all land on the voice's device, nothing stays on the CPU."""
    import copy

    meta = Voice(voice.info, voice.settings, copy.deepcopy(voice.model), torch.device("meta"))
    assert {p.device.type for p in meta.model.parameters()} == {"meta"}
    dec = meta.model.dec
    prepared = [dec._pre, dec._post, *dec._ups] + [
        conv for block in dec.resblocks for attr in ("_fast", "_fast1", "_fast2") for conv in getattr(block, attr, [])
    ]
    assert {conv.weight4d.device.type for conv in prepared if conv.weight4d is not None} == {"meta"}
    padded, lengths, _ = meta._model_inputs([[1, 2, 3]], meta.resolve_params(SynthesisParams(seed=1)))
    assert padded.device.type == lengths.device.type == "meta"


def test_device_plumbing_on_cpu(voice: Voice) -> None:
    assert voice.device == torch.device("cpu")
    assert {p.device for p in voice.model.parameters()} == {torch.device("cpu")}
    padded, lengths, _ = voice._model_inputs([[1, 2, 3]], voice.resolve_params())
    assert padded.device == lengths.device == voice.device
    with pytest.raises(ValueError, match="device"):
        Voice.load(device="no-such-device")
