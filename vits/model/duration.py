"""Duration predictors: stochastic (flow-based, inference direction only) and deterministic."""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from .common import Conv1x1, DDSConv, LayerNorm

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _bin_edges(unnormalized: torch.Tensor, min_size: float, low: float, high: float) -> torch.Tensor:
    num_bins = unnormalized.shape[-1]
    sizes = min_size + (1 - min_size * num_bins) * torch.softmax(unnormalized, dim=-1)
    edges = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
    edges = (high - low) * edges + low
    # Pin the ends exactly, as the reference does, so rounding cannot move them.
    edges[..., 0] = low
    edges[..., -1] = high
    return edges


def inverse_rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    tail_bound: float,
) -> torch.Tensor:
    """Inverse of the monotonic rational-quadratic spline with identity ("linear") tails.

    Computed for every element and selected with `where` instead of boolean indexing: the
    shapes stay static and batched inputs cost no gathers of ragged subsets.
    """
    inside = (inputs >= -tail_bound) & (inputs <= tail_bound)
    x = inputs.clamp(-tail_bound, tail_bound)
    # Boundary derivatives equal 1 so the spline joins the identity tails smoothly.
    boundary = math.log(math.exp(1 - MIN_DERIVATIVE) - 1)
    derivs = F.pad(unnormalized_derivatives, (1, 1), value=boundary)
    derivatives = MIN_DERIVATIVE + F.softplus(derivs)

    cumwidths = _bin_edges(unnormalized_widths, MIN_BIN_WIDTH, -tail_bound, tail_bound)
    cumheights = _bin_edges(unnormalized_heights, MIN_BIN_HEIGHT, -tail_bound, tail_bound)
    widths = cumwidths[..., 1:] - cumwidths[..., :-1]
    heights = cumheights[..., 1:] - cumheights[..., :-1]

    # Bin search on the output side (inverse direction); the last edge is nudged up so x == top
    # falls into the last bin.
    search = cumheights.clone()
    search[..., -1] += 1e-6
    bin_idx = (torch.sum(x.unsqueeze(-1) >= search, dim=-1) - 1).clamp(0, widths.shape[-1] - 1).unsqueeze(-1)

    in_cumwidths = cumwidths.gather(-1, bin_idx).squeeze(-1)
    in_widths = widths.gather(-1, bin_idx).squeeze(-1)
    in_cumheights = cumheights.gather(-1, bin_idx).squeeze(-1)
    in_heights = heights.gather(-1, bin_idx).squeeze(-1)
    in_delta = in_heights / in_widths
    in_d0 = derivatives.gather(-1, bin_idx).squeeze(-1)
    in_d1 = derivatives[..., 1:].gather(-1, bin_idx).squeeze(-1)

    dy = x - in_cumheights
    slope_sum = in_d0 + in_d1 - 2 * in_delta
    a = dy * slope_sum + in_heights * (in_delta - in_d0)
    b = in_heights * in_d0 - dy * slope_sum
    c = -in_delta * dy
    discriminant = (b.pow(2) - 4 * a * c).clamp_min(0)
    root = (2 * c) / (-b - torch.sqrt(discriminant))
    outputs = root * in_widths + in_cumwidths
    return torch.where(inside, outputs, inputs)


class ElementwiseAffine(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        return (x - self.m) * torch.exp(-self.logs) * x_mask

    def reverse_rows(self, x: torch.Tensor) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels]."""
        return (x - self.m[:, 0]) * torch.exp(-self.logs[:, 0])


class ConvFlow(nn.Module):
    """Neural-spline coupling layer conditioned on the text hidden states."""

    def __init__(
        self, in_channels: int, filter_channels: int, kernel_size: int, num_bins: int, tail_bound: float
    ) -> None:
        super().__init__()
        self.half_channels = in_channels // 2
        self.filter_channels = filter_channels
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.pre = Conv1x1(self.half_channels, filter_channels)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers=3)
        self.proj = Conv1x1(filter_channels, self.half_channels * (num_bins * 3 - 1))

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], dim=1)
        h = self.convs(self.pre(x0), x_mask, g=cond)
        h = self.proj(h) * x_mask
        b, c, t = x0.shape
        h = h.reshape(b, c, -1, t).permute(0, 1, 3, 2)  # [b, c, t, 3 * bins - 1]
        scale = math.sqrt(self.filter_channels)
        nb = self.num_bins
        x1 = inverse_rational_quadratic_spline(
            x1, h[..., :nb] / scale, h[..., nb : 2 * nb] / scale, h[..., 2 * nb :], self.tail_bound
        )
        return torch.cat([x0, x1], dim=1) * x_mask

    def reverse_rows(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One unpadded item as rows: x [t, channels], cond [t, filter_channels]."""
        half, nb = self.half_channels, self.num_bins
        x0, x1 = x[:, :half], x[:, half:]
        h = self.proj.rows(self.convs.forward_rows(self.pre.rows(x0), g=cond))
        h = h.view(h.shape[0], half, -1).transpose(0, 1)  # [half, t, 3 * bins - 1], as `reverse` lays it out
        scale = math.sqrt(self.filter_channels)
        x1 = inverse_rational_quadratic_spline(
            x1.t(), h[..., :nb] / scale, h[..., nb : 2 * nb] / scale, h[..., 2 * nb :], self.tail_bound
        )
        return torch.cat([x0, x1.t()], dim=1)


class StochasticDurationPredictor(nn.Module):
    """Flow-based duration predictor; only the noise -> log-duration direction is built.

    The training-only posterior flows and the flow the original code skips at inference
    (flows.1) are not created, so checkpoints load without them.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        n_flows: int,
        num_bins: int,
        tail_bound: float,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        filter_channels = in_channels  # the original code forces this
        self.pre = Conv1x1(in_channels, filter_channels)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers=3)
        self.proj = Conv1x1(filter_channels, filter_channels)
        self.cond = Conv1x1(gin_channels, filter_channels) if gin_channels else None
        # Original order: [affine(0), (convflow(2i-1), flip(2i)) for i in 1..n]. Keys keep those indices.
        flows: dict[str, nn.Module] = {"0": ElementwiseAffine(2)}
        for i in range(2, n_flows + 1):
            flows[str(2 * i - 1)] = ConvFlow(2, filter_channels, kernel_size, num_bins, tail_bound)
        self.flows = nn.ModuleDict(flows)
        self.n_flows = n_flows

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`noise` is [b, 2, t] already scaled by noise_w; returns log durations [b, 1, t]."""
        x = self.pre(x)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        x = self.convs(x, x_mask)
        x = self.proj(x) * x_mask
        z = noise
        # Reverse order: flip, convflow(2n-1), flip, ..., convflow(3), flip, affine(0).
        for i in range(self.n_flows, 0, -1):
            z = torch.flip(z, [1])
            if i > 1:
                z = cast(ConvFlow, self.flows[str(2 * i - 1)]).reverse(z, x_mask, x)
        z = cast(ElementwiseAffine, self.flows["0"]).reverse(z, x_mask)
        return z[:, :1]

    def forward_one(self, x: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """`forward` for one unpadded item ([1, c, t], noise [1, 2, t]), run on rows [t, c]:
        without masks and layout changes it costs a quarter to a half less (many small layers)."""
        rows = self.pre.rows(x[0].t())
        if g is not None and self.cond is not None:
            rows = rows + self.cond(g)[0, :, 0]
        rows = self.proj.rows(self.convs.forward_rows(rows))
        z = noise[0].t()
        for i in range(self.n_flows, 0, -1):
            z = torch.flip(z, [1])
            if i > 1:
                z = cast(ConvFlow, self.flows[str(2 * i - 1)]).reverse_rows(z, rows)
        z = cast(ElementwiseAffine, self.flows["0"]).reverse_rows(z)
        return z[:, 0].view(1, 1, -1)


class DurationPredictor(nn.Module):
    """Deterministic convolutional duration predictor (checkpoints trained with use_sdp=False)."""

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, gin_channels: int = 0) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = LayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = LayerNorm(filter_channels)
        self.proj = Conv1x1(filter_channels, 1)
        self.cond = Conv1x1(gin_channels, in_channels) if gin_channels else None

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        x = self.norm_1(torch.relu(self.conv_1(x * x_mask)))
        x = self.norm_2(torch.relu(self.conv_2(x * x_mask)))
        return self.proj(x * x_mask) * x_mask
