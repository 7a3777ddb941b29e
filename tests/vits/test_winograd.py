"""The Winograd kernel (`vits.model.winograd`): the same convolutions as torch's, fewer
multiplications; the engine is chosen per process and falls back to oneDNN where it cannot build."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vits import SynthesisParams, Voice
from vits.model import winograd

needs_kernel = pytest.mark.skipif(winograd.library() is None, reason="the Winograd kernel does not build here")
ZERO = SynthesisParams(noise_scale=0.0, noise_w=0.0)


@pytest.fixture
def restore_conv_engine() -> Iterator[None]:
    before = winograd.conv_engine()
    yield
    winograd.set_conv_engine(before)


def _conv(in_channels: int, out_channels: int, kernel: int, dilation: int) -> nn.Conv1d:
    generator = torch.Generator().manual_seed(kernel * 100 + dilation)
    conv = nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation, padding=(kernel - 1) * dilation // 2)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / (in_channels * kernel) ** 0.5)
        conv.bias.copy_(torch.randn(out_channels, generator=generator) * 0.1)
    return conv


def _reference(conv: nn.Conv1d, x_rows: torch.Tensor, slope: float, residual: torch.Tensor | None) -> torch.Tensor:
    """residual + conv(leaky_relu(x)) in float64, on rows [T, C]."""
    conv = conv.requires_grad_(False)
    activated = F.leaky_relu(x_rows.double(), slope) if slope != 1.0 else x_rows.double()
    out = F.conv1d(
        activated.t().unsqueeze(0),
        conv.weight.double(),
        conv.bias.double(),
        padding=conv.padding,
        dilation=conv.dilation,
    )[0].t()
    return out if residual is None else out + residual.double()


def test_the_transforms_compute_a_filter_exactly_in_float64() -> None:
    rng = np.random.default_rng(0)
    for kernel, tile in winograd.TILE_OUTPUTS.items():
        at, g, bt = winograd.transforms(tile, kernel)
        d = rng.standard_normal(tile + kernel - 1)
        taps = rng.standard_normal(kernel)
        expected = [sum(taps[k] * d[i + k] for k in range(kernel)) for i in range(tile)]
        np.testing.assert_allclose(at @ ((g @ taps) * (bt @ d)), expected, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (3, 2), (5, 2), (5, 6), (7, 3), (7, 12)])
@pytest.mark.parametrize("rows", [1, 5, 37, 301])  # inside one tile, a few tiles, several blocks
@pytest.mark.parametrize(("in_channels", "out_channels"), [(32, 32), (64, 64), (48, 96)])
def test_the_kernel_equals_the_convolution(
    kernel: int, dilation: int, rows: int, in_channels: int, out_channels: int
) -> None:
    conv = _conv(in_channels, out_channels, kernel, dilation)
    fast = winograd.WinogradConv.of(conv)
    x = torch.randn(rows, in_channels, generator=torch.Generator().manual_seed(rows))
    residual = torch.randn(rows, out_channels)
    with torch.no_grad():
        for slope, res in ((1.0, None), (0.1, None), (0.1, residual)):
            got = fast.rows(x, res, slope=slope)
            expected = _reference(conv, x, slope, res)
            assert got.shape == (rows, out_channels)
            # float32 direct convolution: about 3e-6 here; the transforms amplify rounding (F(4, 7) most).
            assert float((got.double() - expected).abs().max()) <= 1e-4, (slope, res is None)


@needs_kernel
def test_the_kernel_adds_in_place_and_leaves_its_input_alone() -> None:
    conv = _conv(32, 32, 5, 2)
    fast = winograd.WinogradConv.of(conv)
    x = torch.randn(200, 32)
    before = x.clone()
    residual = torch.randn(200, 32)
    expected = _reference(conv, x, 0.1, residual)
    with torch.no_grad():
        out = fast.rows(x, residual, inplace=True, slope=0.1)
    assert out.data_ptr() == residual.data_ptr()
    assert torch.equal(x, before)
    assert float((residual.double() - expected).abs().max()) <= 3e-5


@needs_kernel
def test_an_image_runs_through_its_rows() -> None:
    conv = _conv(32, 32, 3, 1)
    fast = winograd.WinogradConv.of(conv)
    image = torch.randn(1, 32, 1, 90).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = fast(image, image, 0.1)
    assert got.shape == image.shape and got.is_contiguous(memory_format=torch.channels_last)
    expected = _reference(conv, image[0, :, 0].t(), 0.1, image[0, :, 0].t())
    assert float((got[0, :, 0].t().double() - expected).abs().max()) <= 3e-5


@needs_kernel
def test_bad_inputs_are_refused_with_the_reason() -> None:
    fast = winograd.WinogradConv.of(_conv(32, 32, 3, 1))
    with pytest.raises(ValueError, match="rows"):
        fast.rows(torch.randn(10, 16))
    with pytest.raises(ValueError, match="rows"):
        fast.rows(torch.randn(10, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="residual"):
        fast.rows(torch.randn(10, 32), torch.randn(9, 32))
    with pytest.raises(ValueError, match="inplace"):
        fast.rows(torch.randn(10, 32), inplace=True)
    with pytest.raises(ValueError, match="does not take"):
        winograd.WinogradConv.of(nn.Conv1d(32, 32, 4, padding=2))
    assert not winograd.supports(nn.Conv1d(32, 32, 3, padding=1, stride=2))
    assert not winograd.supports(nn.Conv1d(32, 20, 3, padding=1))  # outputs not a multiple of a panel
    assert winograd.shape_fits(3, 24, 48, lanes=8) and not winograd.shape_fits(3, 24, 48, lanes=16)
    with pytest.raises(ValueError, match="8 or 16 lanes"):
        winograd.build(4)


needs_avx512 = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() != "AVX512", reason="the CPU runs no AVX-512 (torch's capability)"
)


@needs_kernel
@needs_avx512
@pytest.mark.parametrize(("kernel", "dilation", "rows"), [(3, 1, 301), (5, 3, 77), (7, 2, 5), (7, 1, 1000)])
def test_the_avx512_build_computes_the_avx2_builds_bits(kernel: int, dilation: int, rows: int) -> None:
    """Both builds do each output's multiply-adds in the same order: a machine's choice of build
    changes the speed, never the samples (bench/chaos.py compares PCM byte for byte)."""
    conv = _conv(64, 64, kernel, dilation)
    narrow = winograd.WinogradConv(conv.weight, conv.bias, dilation, lanes=8)
    wide = winograd.WinogradConv(conv.weight, conv.bias, dilation, lanes=16)
    x, residual = torch.randn(rows, 64), torch.randn(rows, 64)
    with torch.no_grad():
        by_avx2 = narrow.rows(x, residual, slope=0.1)
        by_avx512 = wide.rows(x, residual, slope=0.1)
    assert torch.equal(by_avx2, by_avx512)
    assert float((by_avx512.double() - _reference(conv, x, 0.1, residual)).abs().max()) <= 1e-4


def test_the_build_width_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    capability = {"value": "AVX512"}
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability["value"])
    family = {"value": ("AuthenticAMD", 26)}
    monkeypatch.setattr(winograd, "cpu_family", lambda: family["value"])

    def lanes() -> int:
        winograd.kernel_lanes.cache_clear()
        return winograd.kernel_lanes()

    try:
        assert lanes() == 16  # Zen 5: 512-bit units
        family["value"] = ("GenuineIntel", 6)
        assert lanes() == 16
        family["value"] = ("AuthenticAMD", 25)
        assert lanes() == 8  # Zen 4: AVX-512 on 256-bit units, the AVX2 build measured
        capability["value"] = "AVX2"
        assert lanes() == 8
    finally:
        winograd.kernel_lanes.cache_clear()  # the next call decides for the real machine again


@needs_kernel
@pytest.mark.usefixtures("restore_conv_engine")
def test_the_voice_sounds_the_same_on_either_engine(voice: Voice) -> None:
    """Encoder, flow and decoder through the kernel against oneDNN's convolutions; the chunks
    (windows cut at other tile offsets) against the whole sentence."""
    text = "The kernel and oneDNN read the same weights, so the voice must not change."
    winograd.set_conv_engine("onednn")
    by_onednn = voice.synthesize(text, ZERO).samples
    winograd.set_conv_engine("winograd")
    by_winograd = voice.synthesize(text, ZERO).samples
    (sentence,) = voice.prepare(text)
    chunks = np.concatenate([c.samples for c in voice.sentence_chunks(sentence, ZERO, chunk_seconds=0.4)])
    assert len(by_onednn) == len(by_winograd) == len(chunks)
    assert float(np.abs(by_winograd - by_onednn).max()) <= 1e-4
    assert float(np.abs(chunks - by_winograd).max()) <= 1e-4


def test_without_a_compiler_the_decoder_keeps_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "_engine", winograd.conv_engine())  # put back as it was, unchecked
    monkeypatch.setattr(winograd, "_builds", {})
    monkeypatch.setattr(winograd, "_library_error", None)
    monkeypatch.setattr(winograd, "_decided", None)
    monkeypatch.setattr(winograd.shutil, "which", lambda name: None)
    assert winograd.library() is None
    assert winograd.choose_conv_engine("auto") == "onednn"
    with pytest.raises(ValueError, match="no C compiler"):
        winograd.set_conv_engine("winograd")
    with pytest.raises(ValueError, match="conv engine must be one of"):
        winograd.set_conv_engine("fft")  # type: ignore[arg-type]


@needs_kernel
def test_auto_is_decided_by_the_machine_not_by_a_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agents on one kind of machine must compute the same samples (bench/chaos.py compares PCM
    byte for byte): the choice depends on the CPU and the thread count only."""
    monkeypatch.setattr(winograd, "_engine", winograd.conv_engine())
    monkeypatch.setattr(winograd, "_decided", None)
    capability = {"value": "AVX2"}
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability["value"])
    family = {"value": ("GenuineIntel", 6)}
    monkeypatch.setattr(winograd, "cpu_family", lambda: family["value"])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert winograd.automatic() == "winograd"
        capability["value"] = "AVX512"
        assert winograd.automatic() == "winograd"  # Intel's AVX-512: the 512-bit build
        family["value"] = ("GenuineIntel", 15)
        assert winograd.automatic() == "onednn"  # not an Intel family measured
        family["value"] = ("AuthenticAMD", 25)
        assert winograd.automatic() == "winograd"  # Zen 4: AVX-512 on 256-bit units
        family["value"] = ("AuthenticAMD", 26)
        assert winograd.automatic() == "winograd"  # Zen 5: 512-bit units, the AVX-512 build
        family["value"] = ("AuthenticAMD", 23)
        assert winograd.automatic() == "onednn"  # not an AVX-512 family measured
        capability["value"] = "DEFAULT"
        family["value"] = ("AuthenticAMD", 25)
        assert winograd.automatic() == "onednn"  # a Zen 4 whose AVX-512 torch does not use
        capability["value"] = "AVX2"
        torch.set_num_threads(2)
        assert winograd.automatic() == "onednn"  # single-threaded kernel against 2 intra-op threads
    finally:
        torch.set_num_threads(threads)
    first = winograd.choose_conv_engine("auto")  # decided once per process, kept after
    torch.set_num_threads(1 if threads != 1 else 2)
    try:
        assert winograd.choose_conv_engine("auto") == first == winograd.conv_engine()
    finally:
        torch.set_num_threads(threads)
