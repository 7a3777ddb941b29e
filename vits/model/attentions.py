"""Transformer text encoder with windowed relative-position multi-head attention (as in VITS)."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch.nn import functional as F

from .common import Conv1x1, LayerNorm, RowTaps, prepare_row_taps, rows_conv
from .engine import linear_rows

if TYPE_CHECKING:
    from ..parallel import WindowWorkers

# A feed-forward layer is shared by the workers only when each gets at least this many rows
# (phoneme ids): below it the hand-offs cost more than a second core wins.
MIN_ROWS_PER_WORKER = 48


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

    def forward_rows(self, x: torch.Tensor) -> torch.Tensor:
        """One unpadded item as rows: x [t, channels] -> [t, channels] (`forward` without masks).

        Q, K and V come from one matrix product. The relative terms touch only the band: the
        scores live in a [h, t, t + 2w] buffer whose diagonals (i, i + k), k in [0, 2w], are a
        strided [h, t, 2w + 1] view, so the relative logits are written into the band and the
        relative weights read out of it without any [t, t] gather; the w columns on either side
        hold what falls outside the sentence and are dropped.
        """
        t, channels = x.shape
        h, d, w = self.n_heads, self.k_channels, self.window_size
        weight, bias = self._qkv()
        qkv = linear_rows(x, weight, bias)  # [t, 3 * channels]; q is already scaled by 1/sqrt(d)
        q = qkv[:, :channels].view(t, h, d).transpose(0, 1)  # [h, t, d]
        k = qkv[:, channels : 2 * channels].view(t, h, d).permute(1, 2, 0)  # [h, d, t]
        v = qkv[:, 2 * channels :].view(t, h, d).transpose(0, 1)  # [h, t, d]
        wide = t + 2 * w
        band = (h, t, 2 * w + 1), (t * wide, wide + 1, 1)
        padded = q.new_zeros(h, t, wide)
        torch.matmul(q, self.emb_rel_k.transpose(1, 2), out=padded.as_strided(*band))  # relative logits
        scores = torch.baddbmm(padded[:, :, w : w + t], q, k)  # [h, t, t]
        p_attn = torch.softmax(scores, dim=-1)
        out = torch.bmm(p_attn, v)
        padded[:, :, w : w + t] = p_attn
        padded[:, :, :w] = 0
        padded[:, :, w + t :] = 0
        out.add_(torch.matmul(padded.as_strided(*band), self.emb_rel_v))  # relative weights
        out = out.transpose(0, 1).reshape(t, channels)
        return self.conv_o.rows(out)

    def _qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[3 * channels, channels] weights and their bias, q's scaled by 1/sqrt(d); built once."""
        cached = getattr(self, "_qkv_cache", None)
        if cached is None or cached[0].device != self.conv_q.weight.device:
            scale = 1.0 / math.sqrt(self.k_channels)
            convs = ((self.conv_q, scale), (self.conv_k, 1.0), (self.conv_v, 1.0))
            with torch.inference_mode(False):  # ordinary tensors: later calls outside it may use them
                weight = torch.cat([conv.weight.detach().squeeze(2) * s for conv, s in convs])
                bias = torch.cat([conv.bias.detach() * s for conv, s in convs])  # type: ignore[union-attr]
            cached = self._qkv_cache = (weight, bias)
        return cached


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

    def forward_rows(self, x: torch.Tensor, workers: WindowWorkers | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels]: both convolutions as per-tap matrix
        products on the rows (`rows_conv`), faster than oneDNN's on these wide layers.

        With several `workers`, each computes a band of output rows from the input rows it
        reads: the feed-forward is most of the encoder's work, which otherwise runs on one core.
        """
        if self.pad[0] != self.pad[1]:  # even kernels pad unevenly: the general path
            return self.forward(x.t().unsqueeze(0), torch.ones(1, 1, x.shape[0], device=x.device))[0].t()
        rows = x.shape[0]
        parts = 1 if workers is None else min(workers.count, rows // MIN_ROWS_PER_WORKER)
        if parts > 1 and workers is not None:
            bounds = [round(rows * i / parts) for i in range(parts + 1)]
            pieces = workers.map(lambda band: self._band(x, *band), list(pairwise(bounds)))
            return torch.cat(pieces)
        taps_1, taps_2 = self._taps()
        return rows_conv(rows_conv(x, taps_1).relu_(), taps_2)

    def _band(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Output rows [start, stop) of `forward_rows(x)`, from input rows within both kernels' reach.

        A piece's first and last rows are computed as if the rows beyond it were zero: right at
        the sentence's edges (the convolutions' padding), and thrown away inside it.
        """
        rows, reach = x.shape[0], self.pad[0]
        taps_1, taps_2 = self._taps()
        lo, hi = max(start - 2 * reach, 0), min(stop + 2 * reach, rows)
        hidden = rows_conv(x[lo:hi], taps_1).relu_()
        hidden_lo, hidden_hi = max(start - reach, 0), min(stop + reach, rows)
        out = rows_conv(hidden[hidden_lo - lo : hidden_hi - lo], taps_2)
        return out[start - hidden_lo : stop - hidden_lo]

    def _taps(self) -> tuple[RowTaps, RowTaps]:
        cached: tuple[RowTaps, RowTaps] | None = getattr(self, "_row_cache", None)
        if cached is None or cached[0].weights[0].device != self.conv_1.weight.device:
            cached = (
                prepare_row_taps(self.conv_1, padding=self.pad[0]),
                prepare_row_taps(self.conv_2, padding=self.pad[0]),
            )
            self._row_cache = cached
        return cached


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

    def forward_rows(self, x: torch.Tensor, workers: WindowWorkers | None = None) -> torch.Tensor:
        """One unpadded item as rows, x [t, channels] -> [t, channels]: `forward` without masks,
        layer norms over contiguous rows; `workers` share each feed-forward (FFN.forward_rows)."""
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = cast(LayerNorm, norm_1).rows(x + cast(RelativeMultiHeadAttention, attn).forward_rows(x))
            x = cast(LayerNorm, norm_2).rows(x + cast(FFN, ffn).forward_rows(x, workers))
        return x

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

    def forward(
        self, ids: torch.Tensor, x_mask: torch.Tensor, workers: WindowWorkers | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`workers` (one unpadded sentence only) share the encoder's feed-forward layers."""
        if ids.shape[0] == 1 and x_mask.shape[2] == ids.shape[1] and bool(x_mask.all()):
            return self._forward_one(ids[0], workers)
        x = self.emb(ids).transpose(1, 2) * math.sqrt(self.hidden_channels)
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return x, m, logs

    def _forward_one(
        self, ids: torch.Tensor, workers: WindowWorkers | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One unpadded sentence: the encoder runs on [t, channels] rows (no masks, no transposes)."""
        x = self.encoder.forward_rows(self.emb(ids) * math.sqrt(self.hidden_channels), workers)
        stats = self.proj.rows(x)
        stats = stats.t().unsqueeze(0)  # [1, 2 * out, t]
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return x.t().unsqueeze(0), m, logs
