"""Convolutions by rows (`rows_conv`): per-tap matrix products equal the convolution they replace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vits.model import GeneratorConfig
from vits.model.common import WN, depthwise_rows, prepare_row_taps, rows_conv
from vits.model.duration import StochasticDurationPredictor
from vits.model.generator import ROWS_MIN_CHANNELS, Generator, _Conv


def _conv(in_channels: int, out_channels: int, kernel: int, dilation: int, *, bias: bool = True) -> nn.Conv1d:
    torch.manual_seed(kernel * 10 + dilation)
    padding = (kernel - 1) * dilation // 2
    return nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation, padding=padding, bias=bias).double()


@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (5, 1), (3, 2), (7, 3), (7, 12)])
@pytest.mark.parametrize("rows", [1, 5, 40, 300])  # shorter than the reach, about it, far longer
def test_rows_conv_equals_the_convolution(kernel: int, dilation: int, rows: int) -> None:
    conv = _conv(8, 6, kernel, dilation)
    x = torch.randn(rows, 8, dtype=torch.float64)
    with torch.inference_mode():
        expected = conv(x.t().unsqueeze(0))[0].t()
        got = rows_conv(x, prepare_row_taps(conv))
    assert got.shape == (rows, 6)
    assert float((got - expected).abs().max()) < 1e-12


@pytest.mark.parametrize("inplace", [False, True])
def test_rows_conv_adds_the_residual_and_the_scale(inplace: bool) -> None:
    conv = _conv(4, 4, 5, 2)
    x = torch.randn(50, 4, dtype=torch.float64)
    residual = torch.randn(50, 4, dtype=torch.float64)
    before = residual.clone()
    scale = torch.tensor([2.0, 1.0, 0.5, 3.0], dtype=torch.float64)
    with torch.inference_mode():
        expected = conv(x.t().unsqueeze(0))[0].t() * scale + before
        got = rows_conv(x, prepare_row_taps(conv, scale), residual=residual, inplace=inplace)
    assert float((got - expected).abs().max()) < 1e-12
    if inplace:
        assert got.data_ptr() == residual.data_ptr()
    else:
        assert torch.equal(residual, before)


def test_rows_conv_without_bias() -> None:
    conv = _conv(3, 5, 3, 1, bias=False)
    x = torch.randn(20, 3, dtype=torch.float64)
    with torch.inference_mode():
        assert float((rows_conv(x, prepare_row_taps(conv)) - conv(x.t().unsqueeze(0))[0].t()).abs().max()) < 1e-12


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv1d(4, 4, 4, padding=2),  # even kernel: no middle tap
        nn.Conv1d(4, 4, 3, padding=0),  # not 'same'
        nn.Conv1d(4, 4, 3, padding=1, stride=2),
        nn.Conv1d(4, 4, 3, padding=1, groups=2),
    ],
)
def test_rows_conv_refuses_what_it_cannot_compute(conv: nn.Conv1d) -> None:
    with pytest.raises(ValueError, match="same"):
        prepare_row_taps(conv)


@pytest.mark.parametrize("conditioned", [False, True])
def test_wavenet_rows_equal_the_masked_forward(conditioned: bool) -> None:
    """The folded gate (2 sigmoid(2a) - 1 for tanh a), with and without a speaker condition."""
    torch.manual_seed(4)
    net = WN(16, 5, 1, 4, gin_channels=8 if conditioned else 0).double().eval()
    for parameter in net.parameters():
        nn.init.normal_(parameter, std=0.2)
    x = torch.randn(1, 16, 70, dtype=torch.float64)
    g = torch.randn(1, 8, 1, dtype=torch.float64) if conditioned else None
    with torch.inference_mode():
        expected = net(x, torch.ones(1, 1, 70, dtype=torch.float64), g=g)[0].t()
        got = net.forward_rows(x[0].t().contiguous(), g=g)
    assert float((got - expected).abs().max()) < 1e-12


def _wide_generator() -> Generator:
    """A generator whose first stage is wide enough to run by rows."""
    torch.manual_seed(1)
    config = GeneratorConfig(
        resblock="2",
        resblock_kernel_sizes=(3, 7),
        resblock_dilation_sizes=((1, 2), (3, 12)),
        upsample_rates=(2, 2),
        upsample_initial_channel=2 * ROWS_MIN_CHANNELS,
        upsample_kernel_sizes=(4, 4),
    )
    gen = Generator(ROWS_MIN_CHANNELS, config).double().eval()
    for parameter in gen.parameters():
        nn.init.normal_(parameter, std=0.05)
    gen.prepare()
    return gen


def test_the_decoder_runs_its_wide_layers_by_rows_and_equals_the_convolutions() -> None:
    gen = _wide_generator()
    assert gen._pre.by_rows and all(conv.by_rows for conv in gen.resblocks[0]._fast)
    assert not any(conv.by_rows for conv in gen.resblocks[2]._fast)  # the narrower second stage
    z = torch.randn(1, ROWS_MIN_CHANNELS, 40, dtype=torch.float64)
    with torch.inference_mode():
        by_rows = gen(z)
        for conv in (gen._pre, *(c for block in gen.resblocks for c in block._fast)):
            conv.taps = None  # the channels-last convolutions everywhere
        convolved = gen(z)
        # A window cut from the sentence equals the same samples of the whole decode either way.
        plan = gen.plan_window(15, 25, 40)
        window = gen(z[:, :, plan.input[0] : plan.input[1]], window=plan)
    assert float((by_rows - convolved).abs().max()) < 1e-12
    assert float((window[0, 0] - convolved[0, 0, 15 * 4 : 25 * 4]).abs().max()) < 1e-12


@pytest.mark.parametrize(("kernel", "dilation", "bias"), [(7, 1, False), (3, 2, True), (1, 1, True)])
@pytest.mark.parametrize("frames", [1, 4, 9, 500])  # shorter than the kernel's reach, and far longer
def test_a_one_channel_output_by_taps_equals_the_convolution(
    kernel: int, dilation: int, bias: bool, frames: int
) -> None:
    """The decoder's last layer (32 channels to 1) runs as one matrix-vector product per tap."""
    conv = _conv(32, 1, kernel, dilation, bias=bias)
    layer = _Conv(conv)
    layer.prepare(0.5)  # the folded average of the residual blocks scales the weights, not the bias
    assert len(layer.tap_weights) == kernel
    x = torch.randn(1, 32, 1, frames, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = layer(x)
        expected = nn.functional.conv1d(
            x[:, :, 0], conv.weight * 0.5, conv.bias, padding=conv.padding, dilation=conv.dilation
        )
    assert got.shape == (1, 1, 1, frames)
    assert float((got[:, :, 0] - expected).abs().max()) < 1e-12


def test_a_batch_keeps_the_channels_last_convolutions() -> None:
    """Rows are one item's memory: a padded batch goes through oneDNN, with the same result."""
    gen = _wide_generator()
    z = torch.randn(2, ROWS_MIN_CHANNELS, 30, dtype=torch.float64)
    mask = torch.ones(2, 1, 30, dtype=torch.float64)
    with torch.inference_mode():
        batch = gen(z, frame_mask=mask)
        alone = torch.cat([gen(z[i : i + 1]) for i in range(2)])
    assert float((batch - alone).abs().max()) < 1e-10


@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (3, 3), (3, 9), (5, 2)])
def test_depthwise_rows_equals_the_grouped_convolution(kernel: int, dilation: int) -> None:
    torch.manual_seed(dilation)
    padding = (kernel - 1) * dilation // 2
    conv = nn.Conv1d(6, 6, kernel, groups=6, dilation=dilation, padding=padding).double()
    for rows in (1, 7, 60):
        x = torch.randn(rows, 6, dtype=torch.float64)
        with torch.inference_mode():
            expected = conv(x.t().unsqueeze(0))[0].t()
            assert float((depthwise_rows(x, conv) - expected).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="depthwise"):
        depthwise_rows(x, nn.Conv1d(6, 6, 3, padding=1))


@pytest.mark.parametrize("conditioned", [False, True])
def test_stochastic_durations_on_rows_equal_the_masked_forward(conditioned: bool) -> None:
    torch.manual_seed(9)
    predictor = StochasticDurationPredictor(12, 3, 4, 10, 5.0, gin_channels=4 if conditioned else 0).double().eval()
    for parameter in predictor.parameters():
        nn.init.normal_(parameter, std=0.3)
    x = torch.randn(1, 12, 33, dtype=torch.float64)
    noise = torch.randn(1, 2, 33, dtype=torch.float64)
    g = torch.randn(1, 4, 1, dtype=torch.float64) if conditioned else None
    with torch.inference_mode():
        expected = predictor(x, torch.ones(1, 1, 33, dtype=torch.float64), noise, g=g)
        got = predictor.forward_one(x, noise, g=g)
    assert got.shape == expected.shape == (1, 1, 33)
    assert float((got - expected).abs().max()) < 1e-10
