"""Transformer text encoder with windowed relative-position multi-head attention (as in VITS)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .common import Conv1x1, LayerNorm


class RelativeMultiHeadAttention(nn.Module):
    """Self-attention whose logits and values get a learned term per relative offset in [-w, w].

    Offsets outside the window contribute nothing, which is what the original
    pad-and-reshape formulation computes; here it is done with gathers on a band, which
    costs O(T^2) instead of O(T^2) plus two large reshapes and pads.
    """

    def __init__(self, channels: int, n_heads: int, window_size: int) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = Conv1x1(channels, channels)
        self.conv_k = Conv1x1(channels, channels)
        self.conv_v = Conv1x1(channels, channels)
        self.conv_o = Conv1x1(channels, channels)
        # heads_share=True in every released VITS/Piper model: one table for all heads.
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window_size + 1, self.k_channels))

    def _band_indices(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.window_size
        pos = torch.arange(length, device=device)
        offset = pos.unsqueeze(0) - pos.unsqueeze(1)  # [i, j] -> j - i
        band = (offset.abs() <= w).float()
        key_idx = (offset + w).clamp(0, 2 * w)
        # For values: column k of the relative weights is p[i, i + k - w], read from p padded by w.
        value_idx = pos.unsqueeze(1) + torch.arange(2 * w + 1, device=device).unsqueeze(0)
        return band, key_idx, value_idx

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, channels, t = x.shape
        h, d, w = self.n_heads, self.k_channels, self.window_size
        q = self.conv_q(x).view(b, h, d, t).transpose(2, 3) / math.sqrt(d)
        k = self.conv_k(x).view(b, h, d, t)
        v = self.conv_v(x).view(b, h, d, t).transpose(2, 3)

        band, key_idx, value_idx = self._band_indices(t, x.device)
        scores = torch.matmul(q, k)  # [b, h, t, t]
        rel_logits = torch.matmul(q, self.emb_rel_k.transpose(1, 2).unsqueeze(0))  # [b, h, t, 2w+1]
        scores = scores + rel_logits.gather(-1, key_idx.expand(b, h, t, t)) * band
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, v)
        rel_weights = F.pad(p_attn, (w, w)).gather(-1, value_idx.expand(b, h, t, 2 * w + 1))
        out = out + torch.matmul(rel_weights, self.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).reshape(b, channels, t)
        return self.conv_o(out)


class FFN(nn.Module):
    """Position-wise feed-forward made of two 'same'-padded convolutions with ReLU."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * x_mask, self.pad)))
        x = self.conv_2(F.pad(x * x_mask, self.pad))
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer encoder."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        window_size: int,
    ) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(
            RelativeMultiHeadAttention(hidden_channels, n_heads, window_size) for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(hidden_channels, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm_1(x + attn(x, attn_mask))
            x = norm_2(x + ffn(x, x_mask))
        return x * x_mask


class TextEncoder(nn.Module):
    """Phoneme ids -> hidden states and the prior's mean / log-std per phoneme."""

    def __init__(
        self,
        n_vocab: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        window_size: int,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb = nn.Embedding(n_vocab, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, window_size)
        self.proj = Conv1x1(hidden_channels, out_channels * 2)

    def forward(self, ids: torch.Tensor, x_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.emb(ids).transpose(1, 2) * math.sqrt(self.hidden_channels)
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return x, m, logs
