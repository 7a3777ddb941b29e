"""Small building blocks shared by the VITS sub-networks."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as F


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

    oneDNN's convolution for these short, wide inputs costs more than the GEMM and got slower,
    not faster, with a second thread (measured on 2 cores); MKL's addmm scales.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.squeeze(2)
        bias = cast(torch.Tensor, self.bias).unsqueeze(1)  # always built with a bias
        if x.shape[0] == 1:
            return torch.addmm(bias, weight, x[0]).unsqueeze(0)
        return torch.baddbmm(bias, weight.expand(x.shape[0], -1, -1), x)


def image_weight(conv: nn.Conv1d) -> torch.Tensor:
    """A Conv1d's weight as a channels-last [out, in, 1, k] tensor, built once (outside inference
    mode, so that any later call may use it), for rows run as a channels-last image."""
    cached: torch.Tensor | None = getattr(conv, "_image_weight", None)
    if cached is None or cached.device != conv.weight.device:
        with torch.inference_mode(False):
            cached = conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
        conv._image_weight = cached  # type: ignore[assignment]
    return cached


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

        [t, c] is the memory of a channels-last [1, c, 1, t] image: the dilated convolutions run
        as 2-D ones on it without copies, and the 1x1 layers are plain matrix products.
        """
        hidden = self.hidden_channels
        output: torch.Tensor | None = None
        cond = None
        if g is not None and self.cond_layer is not None:
            cond = self.cond_layer(g)[0, :, 0]  # [2 * hidden * n_layers]
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            conv = cast(nn.Conv1d, in_layer)
            image = x.t().unsqueeze(0).unsqueeze(2)  # [1, hidden, 1, t], channels-last
            x_in = F.conv2d(
                image, image_weight(conv), conv.bias, padding=(0, int(cast(int, conv.padding[0]))),
                dilation=(1, conv.dilation[0]),
            ).squeeze(2).squeeze(0).t()  # fmt: skip
            if cond is not None:
                x_in = x_in + cond[i * 2 * hidden : (i + 1) * 2 * hidden]
            acts = x_in[:, :hidden].tanh_().mul_(x_in[:, hidden:].sigmoid_())
            skip_layer = cast(Conv1x1, res_skip)
            res_skip_acts = torch.addmm(skip_layer.bias, acts, skip_layer.weight.squeeze(2).t())  # type: ignore[arg-type]
            skip = res_skip_acts[:, hidden:] if i < self.n_layers - 1 else res_skip_acts
            if i < self.n_layers - 1:
                x = x + res_skip_acts[:, :hidden]
            output = skip.clone() if output is None else output.add_(skip)
        assert output is not None
        return output

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
