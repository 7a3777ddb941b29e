"""Small building blocks shared by the VITS sub-networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from . import winograd
from .engine import conv_rows, linear_rows, uses_onednn
from .winograd import WinogradConv


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of a [batch, channels, time] tensor (VITS layout)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The same norm for one item laid out as rows, x [time, channels]."""
        return F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)


class Conv1x1(nn.Conv1d):
    """A kernel-size-1 Conv1d run as one matrix product (same parameters and state dict).

    oneDNN's convolution for these short, wide inputs costs more than a GEMM and got slower,
    not faster, with a second thread (measured on 2 cores); MKL's addmm scales. On rows the
    product goes to the engine measured faster on the machine (`engine.linear_rows`).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.squeeze(2)
        bias = cast(torch.Tensor, self.bias).unsqueeze(1)  # always built with a bias
        if x.shape[0] == 1:
            return torch.addmm(bias, weight, x[0]).unsqueeze(0)
        return torch.baddbmm(bias, weight.expand(x.shape[0], -1, -1), x)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer for one item laid out as rows, x [t, in] -> [t, out]."""
        return linear_rows(x, self.weight.squeeze(2), self.bias)


@dataclass(frozen=True)
class RowTaps:
    """A 'same'-padded, stride-1 Conv1d as one [in, out] matrix per kernel tap (see `rows_conv`),
    and as the channels-last [out, in, 1, k] weight oneDNN's convolution reads."""

    weights: tuple[torch.Tensor, ...]
    image_weight: torch.Tensor
    bias: torch.Tensor | None
    dilation: int
    padding: int
    # The same layer for the Winograd kernel (winograd.py), where it takes the layer's shape.
    winograd: WinogradConv | None = None


def prepare_row_taps(conv: nn.Conv1d, scale: torch.Tensor | float = 1.0, *, padding: int | None = None) -> RowTaps:
    """`conv`'s weights split per tap for `rows_conv`; the caller keeps them.

    `scale` (a number, or one factor per output channel) multiplies weights and bias: layers
    that fold a constant into the convolution ask for it here. `padding` stands for the
    layer's own when its caller pads the input itself. Built outside inference mode, so that
    every later call, inside it or not, may use them.
    """
    kernel, dilation = int(conv.kernel_size[0]), int(conv.dilation[0])
    padding = int(cast(int, conv.padding[0])) if padding is None else padding
    if conv.stride[0] != 1 or conv.groups != 1 or kernel % 2 == 0 or 2 * padding != (kernel - 1) * dilation:
        raise ValueError("rows_conv takes 'same'-padded, stride-1, ungrouped convolutions of odd kernel size")
    factor = torch.as_tensor(scale, dtype=conv.weight.dtype, device=conv.weight.device)
    with torch.inference_mode(False):
        weight = conv.weight.detach() * factor.reshape(-1, 1, 1) if factor.ndim else conv.weight.detach() * factor
        bias = None if conv.bias is None else conv.bias.detach() * factor
        per_tap = tuple(weight[:, :, j].t().contiguous() for j in range(kernel))
        image_weight = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        fast = None
        own_padding = padding == int(cast(int, conv.padding[0]))
        if own_padding and winograd.supports(conv):
            fast = winograd.WinogradConv(weight, bias, dilation)
        taps = RowTaps(per_tap, image_weight, bias, dilation, padding, fast)
    return taps


def rows_conv(
    x: torch.Tensor, taps: RowTaps, *, residual: torch.Tensor | None = None, inplace: bool = False
) -> torch.Tensor:
    """The convolution of one unpadded item laid out as rows, x [t, in] -> [t, out], plus `residual`.

    One matrix product per kernel tap, each reading the rows that tap sees shifted by its offset:
    no padding copy (a tap that reaches past an edge updates only the rows it reaches from
    inside), and no im2col buffer. With wide channels MKL's GEMM runs these faster than
    oneDNN's convolution on an AVX2 EPYC (20 % on the flow's 192-channel layers); where oneDNN
    was measured faster (`engine.row_engine`), its convolution reads the rows as they are.
    With `inplace` the result is written into `residual`. Where the Winograd engine is on
    (winograd.py) and the layer fits it, the kernel computes it instead, fewer multiplications.
    """
    by_winograd = taps.winograd is not None and winograd.active() and winograd.rows_fit(x)
    if by_winograd and (residual is None or winograd.rows_fit(residual)):
        return cast(WinogradConv, taps.winograd).rows(x, residual, inplace=inplace)
    if uses_onednn(x):
        return conv_rows(
            x,
            taps.image_weight,
            taps.bias,
            dilation=taps.dilation,
            padding=taps.padding,
            residual=residual,
            inplace=inplace,
        )
    return tap_products(
        x, taps.weights, taps.bias, dilation=taps.dilation, padding=taps.padding, residual=residual, inplace=inplace
    )


def tap_products(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    bias: torch.Tensor | None,
    *,
    dilation: int,
    padding: int,
    residual: torch.Tensor | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """`rows_conv` by plain matrix products: rows x [t, in], one [in, out] matrix per tap in
    `weights` -> rows [t, out] (+ `residual`, written into it with `inplace`).

    The middle tap covers every output row; each other tap updates only the rows it reaches
    from inside, so nothing is padded or copied."""
    middle_tap, edge_taps = _tap_spans(x.shape[0], len(weights), dilation, padding)
    middle = weights[middle_tap]
    if residual is None:
        out = torch.mm(x, middle) if bias is None else torch.addmm(bias, x, middle)
    else:
        out = residual.addmm_(x, middle) if inplace else torch.addmm(residual, x, middle)
        if bias is not None:
            out.add_(bias)
    for tap, lo, hi, offset in edge_taps:
        out[lo:hi].addmm_(x[lo + offset : hi + offset], weights[tap])
    return out


def _tap_spans(rows: int, kernel: int, dilation: int, padding: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """For a 'same'-padded odd kernel over `rows` rows: the middle tap (it reads row i itself, so
    it covers every output row), and (tap, lo, hi, offset) for each other tap that reaches inside:
    output rows [lo, hi) read input rows [lo + offset, hi + offset)."""
    offsets = [j * dilation - padding for j in range(kernel)]
    spans = [
        (tap, max(0, -offset), min(rows, rows - offset), offset) for tap, offset in enumerate(offsets) if offset != 0
    ]
    return offsets.index(0), [span for span in spans if span[2] > span[1]]


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean [batch, max_length] mask, True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


class DDSConv(nn.Module):
    """Dilated depth-separable convolutions, used by the stochastic duration predictor."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(n_layers):
            dilation = kernel_size**i
            padding = (kernel_size * dilation - dilation) // 2
            self.convs_sep.append(
                nn.Conv1d(channels, channels, kernel_size, groups=channels, dilation=dilation, padding=padding)
            )
            self.convs_1x1.append(Conv1x1(channels, channels))
            self.norms_1.append(LayerNorm(channels))
            self.norms_2.append(LayerNorm(channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is not None:
            x = x + g
        for conv_sep, conv_1x1, norm_1, norm_2 in zip(
            self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2, strict=True
        ):
            y = F.gelu(norm_1(conv_sep(x * x_mask)))
            y = F.gelu(norm_2(conv_1x1(y)))
            x = x + y
        return x * x_mask

    def forward_rows(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels] (and `g` [t, channels] or [channels]):
        `forward` without masks or transposes. Its tensors are small: the layout conversions and
        mask products cost the batched path more than the arithmetic."""
        x = x if g is None else x + g
        for conv_sep, conv_1x1, norm_1, norm_2 in zip(
            self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2, strict=True
        ):
            y = F.gelu(cast(LayerNorm, norm_1).rows(depthwise_rows(x, cast(nn.Conv1d, conv_sep))))
            y = F.gelu(cast(LayerNorm, norm_2).rows(cast(Conv1x1, conv_1x1).rows(y)))
            x = x + y
        return x


def depthwise_rows(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """A 'same'-padded depthwise Conv1d (groups == channels) on rows x [t, channels]: one
    multiply-add per kernel tap over the rows it reaches, as `rows_conv` does for full layers."""
    kernel, dilation = int(conv.kernel_size[0]), int(conv.dilation[0])
    padding = int(cast(int, conv.padding[0]))
    depthwise = conv.groups == conv.in_channels == conv.out_channels
    if not depthwise or 2 * padding != (kernel - 1) * dilation:
        raise ValueError("depthwise_rows takes 'same'-padded depthwise convolutions")
    weight = conv.weight[:, 0, :]
    middle, edge_taps = _tap_spans(x.shape[0], kernel, dilation, padding)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(weight[:, middle])
    out = torch.addcmul(bias, x, weight[:, middle])
    for tap, lo, hi, offset in edge_taps:
        out[lo:hi].addcmul_(x[lo + offset : hi + offset], weight[:, tap])
    return out


class WN(nn.Module):
    """WaveNet-like stack of gated dilated convolutions (non-causal), used by the coupling flow."""

    def __init__(
        self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.cond_layer = Conv1x1(gin_channels, 2 * hidden_channels * n_layers) if gin_channels else None
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(
                nn.Conv1d(hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation, padding=padding)
            )
            # The last layer only feeds the skip path.
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(Conv1x1(hidden_channels, out))

    def forward_rows(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, hidden] -> [t, hidden]: `forward` without a mask.

        The dilated convolutions run as per-tap matrix products on the rows (`rows_conv`), the
        1x1 layers as plain ones. The gate tanh(a) * sigmoid(b) is computed as
        sigmoid(b) * (2 sigmoid(2a) - 1), with the factor 2 folded into the tanh half's weights:
        one sigmoid over both halves and one fused multiply-add, where torch's tanh alone cost
        three times its sigmoid (the identity is exact; rounding moves results by about 1e-7).
        """
        hidden = self.hidden_channels
        output: torch.Tensor | None = None
        cond = None
        if g is not None and self.cond_layer is not None:
            cond = self.cond_layer(g)[0, :, 0]  # [2 * hidden * n_layers]
        gate_scale, taps = self._row_weights()
        for i, res_skip in enumerate(self.res_skip_layers):
            x_in = rows_conv(x, taps[i])
            if cond is not None:
                x_in = x_in.add_(cond[i * 2 * hidden : (i + 1) * 2 * hidden] * gate_scale)
            gates = x_in.sigmoid_()
            sig_b = gates[:, hidden:]
            acts = torch.addcmul(sig_b, gates[:, :hidden], sig_b, value=2).sub_(sig_b, alpha=2)
            res_skip_acts = cast(Conv1x1, res_skip).rows(acts)
            skip = res_skip_acts[:, hidden:] if i < self.n_layers - 1 else res_skip_acts
            if i < self.n_layers - 1:
                x = x + res_skip_acts[:, :hidden]
            output = skip.clone() if output is None else output.add_(skip)
        assert output is not None
        return output

    def _row_weights(self) -> tuple[torch.Tensor, list[RowTaps]]:
        """The gate scale (2 on the tanh half, 1 on the sigmoid half of each input layer's
        channels) and the input layers' per-tap weights with it folded in, built once."""
        cached: tuple[torch.Tensor, list[RowTaps]] | None = getattr(self, "_row_cache", None)
        device = cast(nn.Conv1d, self.in_layers[0]).weight.device
        if cached is None or cached[0].device != device:
            with torch.inference_mode(False):
                scale = torch.ones(2 * self.hidden_channels, device=device)
                scale[: self.hidden_channels] = 2.0
            cached = (scale, [prepare_row_taps(cast(nn.Conv1d, conv), scale) for conv in self.in_layers])
            self._row_cache = cached
        return cached

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.hidden_channels
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * hidden : (i + 1) * 2 * hidden]
            acts = torch.tanh(x_in[:, :hidden]) * torch.sigmoid(x_in[:, hidden:])
            res_skip_acts = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip_acts[:, :hidden]) * x_mask
                output = output + res_skip_acts[:, hidden:]
            else:
                output = output + res_skip_acts
        return output * x_mask
