"""Residual coupling flow, run in the prior -> latent direction."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from .common import WN, Conv1x1


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half is shifted by a WaveNet of the first half."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = Conv1x1(self.half_channels, hidden_channels)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = Conv1x1(hidden_channels, self.half_channels)

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], dim=1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        mean = self.post(h) * x_mask
        return torch.cat([x0, (x1 - mean) * x_mask], dim=1)

    def reverse_rows(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels] (`reverse` without a mask)."""
        half = self.half_channels
        x0, x1 = x[:, :half], x[:, half:]
        h = self.pre.rows(x0)
        h = self.enc.forward_rows(h, g=g)
        mean = self.post.rows(h)
        return torch.cat([x0, x1 - mean], dim=1)


class ResidualCouplingBlock(nn.Module):
    """Coupling layers at even indices, channel flips at odd ones (indices kept for state dicts)."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleDict(
            {
                str(2 * i): ResidualCouplingLayer(
                    channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels
                )
                for i in range(n_flows)
            }
        )
        self._reverse_order = [cast(ResidualCouplingLayer, self.flows[str(2 * i)]) for i in reversed(range(n_flows))]

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self._reverse_order:
            x = torch.flip(x, [1])
            x = layer.reverse(x, x_mask, g=g)
        return x

    def reverse_rows(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels] -> [t, channels]."""
        for layer in self._reverse_order:
            x = layer.reverse_rows(torch.flip(x, [1]), g=g)
        return x
