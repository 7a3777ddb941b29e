"""HiFi-GAN generator (decoder) with residual block types "1" and "2".

The decoder runs the bulk of the computation on long sequences with few channels. oneDNN is
markedly faster (about 2x measured on 2 cores) on those as 2-D convolutions in channels-last
layout than as 1-D convolutions, so `prepare()` builds [out, in, 1, k] channels-last copies of
the weights and the forward pass works on [batch, channels, 1, time] tensors. The parameters
keep their original 1-D shapes and names so state dicts load unchanged.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from . import winograd
from .common import RowTaps, prepare_row_taps, rows_conv, tap_products
from .config import GeneratorConfig
from .engine import uses_onednn
from .window import DecoderWindow, Stage, plan_window, series_reach

LRELU_SLOPE = 0.1
_CL = torch.channels_last
# oneDNN's fused convolution + binary op (the kernel inductor emits); absent in builds without oneDNN.
_FUSED_ADD = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
# Layers reading at least this many channels run by rows (`rows_conv`): on an AVX2 EPYC the
# first stage's 128-channel residual convolutions took 14 % less time so, the 64- and 32-channel
# ones of the later stages more (oneDNN's direct convolution wins on narrow, long signals).
ROWS_MIN_CHANNELS = 128


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padding of a batch in place (`x` is always a temporary here)."""
    return x if mask is None else x.mul_(mask)


class _Conv:
    """A Conv1d / ConvTranspose1d evaluated as a channels-last 2-D convolution, or, for wide
    stride-1 layers on one item, as per-tap matrix products on the same memory (`rows_conv`).

    A plain object, not a Module, so the wrapped parameters appear once in the state dict.
    """

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d) -> None:
        self.conv = conv
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        # A channels-last [1, c, 1, t] image is rows [t, c] in memory: wide layers read it as such.
        self.by_rows = not self.transposed and conv.in_channels >= ROWS_MIN_CHANNELS
        self.weight4d: torch.Tensor | None = None
        self.taps: RowTaps | None = None
        # Residual-block convolutions also carry Winograd weights, used where that engine is on.
        self.winograd: winograd.WinogradConv | None = None
        # One output channel (the last layer): one [in, 1] weight matrix per tap, see `_one_output`.
        self.tap_weights: tuple[torch.Tensor, ...] = ()

    def prepare(self, scale: float = 1.0) -> None:
        if self.by_rows:  # the row taps carry the channels-last copy and the Winograd weights too
            self.taps = prepare_row_taps(cast(nn.Conv1d, self.conv), scale)
            self.weight4d = self.taps.image_weight
            self.winograd = self.taps.winograd
            return
        weight = self.conv.weight.detach()
        if scale != 1.0:
            weight = weight * scale
        self.weight4d = weight.unsqueeze(2).contiguous(memory_format=_CL)
        if not self.transposed and self.conv.out_channels == 1:
            self.tap_weights = tuple(weight[0, :, k].reshape(-1, 1).contiguous() for k in range(weight.shape[2]))
        if not self.transposed and scale == 1.0 and winograd.supports(cast(nn.Conv1d, self.conv)):
            self.winograd = winograd.WinogradConv.of(cast(nn.Conv1d, self.conv))

    def _rows(self, x: torch.Tensor) -> torch.Tensor | None:
        """x [1, c, 1, t] as rows [t, c] when this layer runs by rows, else None. Where oneDNN
        runs the row products (engine.py), the layer keeps its own oneDNN convolution: the same
        kernel, without the row path's padding to a multiple of 16 rows."""
        if self.taps is None or x.shape[0] != 1 or not x.is_cpu or uses_onednn(x):
            return None
        return x[0, :, 0].t().contiguous()  # a view unless x is not channels-last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight4d is None:
            self.prepare()
        rows = self._rows(x)
        if rows is not None:
            return _image(rows_conv(rows, cast(RowTaps, self.taps)))
        if self.tap_weights and x.shape[0] == 1 and x.is_cpu and x.is_contiguous(memory_format=_CL):
            return self._one_output(x[0, :, 0].t())
        weight = cast(torch.Tensor, self.weight4d)
        conv = self.conv
        padding = (0, int(cast(int, conv.padding[0])))
        if self.transposed:
            return F.conv_transpose2d(x, weight, conv.bias, stride=(1, conv.stride[0]), padding=padding)
        return F.conv2d(x, weight, conv.bias, padding=padding, dilation=(1, conv.dilation[0]))

    def _one_output(self, rows: torch.Tensor) -> torch.Tensor:
        """A one-channel output from rows [t, in] as the image [1, 1, 1, t] (the same memory as
        rows [t, 1]): one product per tap over the rows it reaches (`tap_products`). oneDNN's
        convolution runs this shape (the decoder's last layer, 32 channels to 1 over every
        sample) at a small fraction of the CPU's speed: 4.2 ms against 2.2 ms for 60,000 samples
        on a Zen 4 at one thread. Not `rows_conv`: where oneDNN runs the row products, it would
        send the layer back to that convolution."""
        conv = self.conv
        out = tap_products(
            rows,
            self.tap_weights,
            None if conv.bias is None else conv.bias.detach(),  # the folded scale is the input's, not the bias's
            dilation=int(conv.dilation[0]),
            padding=int(cast(int, conv.padding[0])),
        )
        return out.view(1, 1, 1, rows.shape[0])

    def add(self, x: torch.Tensor, residual: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
        """conv(x) + residual; with `inplace` the sum is written into `residual`.

        oneDNN adds the residual while writing the convolution's output, which saves a full
        read-modify-write pass over a long signal per residual connection; by rows, the matrix
        products accumulate into the residual the same way.
        """
        if self.weight4d is None:
            self.prepare()
        conv = self.conv
        if torch.compiler.is_compiling():
            # Inductor pattern-matches conv + add into the same fused oneDNN kernel (freezing).
            return self(x) + residual
        rows = self._rows(x)
        if rows is not None and residual.is_contiguous(memory_format=_CL):
            sum_rows = rows_conv(rows, cast(RowTaps, self.taps), residual=residual[0, :, 0].t(), inplace=inplace)
            return _image(sum_rows)
        if _FUSED_ADD and x.is_cpu and x.dtype == torch.float32 and not self.transposed:
            args: tuple[object, ...] = (
                cast(torch.Tensor, self.weight4d),
                conv.bias,
                [0, int(cast(int, conv.padding[0]))],
                [1, 1],
                [1, conv.dilation[0]],
                1,
                "add",
                None,
                None,
                [],
                None,
            )
            if inplace:
                return torch.ops.mkldnn._convolution_pointwise_.binary(residual, x, *args)
            return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, *args)
        out = self(x)
        return residual.add_(out) if inplace else out.add_(residual)


def _image(rows: torch.Tensor) -> torch.Tensor:
    """Rows [t, c] as the channels-last image [1, c, 1, t] they are in memory."""
    return rows.t().unsqueeze(0).unsqueeze(2)


def _wrap(convs: nn.ModuleList) -> list[_Conv]:
    return [_Conv(cast(nn.Conv1d | nn.ConvTranspose1d, c)) for c in convs]


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with residual connections."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1)) for _ in dilations
        )
        self._fast1 = _wrap(self.convs1)
        self._fast2 = _wrap(self.convs2)

    def reach(self) -> tuple[int, int]:
        """Samples read left and right of an output position (every conv runs in series)."""
        return series_reach([*self.convs1, *self.convs2])  # type: ignore[list-item]

    def uses_activated(self, x: torch.Tensor, mask: torch.Tensor | None) -> bool:
        return not _by_winograd(self._fast1[0], x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, activated: torch.Tensor | None) -> torch.Tensor:
        """`activated` is the masked lrelu(x), computed once for all blocks of a stage where one
        of them reads it (`uses_activated`), else None."""
        shared = True  # x (the stage input) is read by the other blocks: never written
        for c1, c2 in zip(self._fast1, self._fast2, strict=True):
            if _by_winograd(c1, x, mask):
                xt = cast(winograd.WinogradConv, c1.winograd)(x, None, LRELU_SLOPE)
            else:
                a = activated if shared and activated is not None else _masked(F.leaky_relu(x, LRELU_SLOPE), mask)
                xt = c1(a)
            if _by_winograd(c2, xt, mask):
                x = cast(winograd.WinogradConv, c2.winograd)(xt, x, LRELU_SLOPE)
            else:
                x = c2.add(_masked(F.leaky_relu(xt, LRELU_SLOPE, inplace=True), mask), x, inplace=not shared)
            shared = False
        return _masked(x, mask)


class ResBlock2(nn.Module):
    """Dilated convs with residual connections (the lighter block of Piper's medium voices)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d)) for d in dilations
        )
        self._fast = _wrap(self.convs)

    def reach(self) -> tuple[int, int]:
        """Samples read left and right of an output position (every conv runs in series)."""
        return series_reach(list(self.convs))  # type: ignore[arg-type]

    def uses_activated(self, x: torch.Tensor, mask: torch.Tensor | None) -> bool:
        return not _by_winograd(self._fast[0], x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, activated: torch.Tensor | None) -> torch.Tensor:
        """`activated` is the masked lrelu(x), computed once for all blocks of a stage where one
        of them reads it (`uses_activated`), else None."""
        for index, conv in enumerate(self._fast):
            if _by_winograd(conv, x, mask):  # lrelu applied while reading; a new tensor
                x = cast(winograd.WinogradConv, conv.winograd)(x, x, LRELU_SLOPE)
                continue
            a = activated if index == 0 and activated is not None else _masked(F.leaky_relu(x, LRELU_SLOPE), mask)
            # The first reads the stage input, which the other blocks read too: not in place.
            x = conv.add(a, x, inplace=index > 0)
        return _masked(x, mask)


def _by_winograd(conv: _Conv, x: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether `conv` runs by the Winograd kernel on `x` (winograd.py): the engine is on, the
    layer has its weights, and x is one unpadded channels-last float32 image."""
    return mask is None and conv.winograd is not None and winograd.applies(x)


class Generator(nn.Module):
    def __init__(self, in_channels: int, config: GeneratorConfig, gin_channels: int = 0) -> None:
        super().__init__()
        if config.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {config.resblock!r}")
        if len(config.upsample_rates) != len(config.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(config.resblock_kernel_sizes) != len(config.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        block = ResBlock1 if config.resblock == "1" else ResBlock2
        self.upsample_rates = tuple(config.upsample_rates)
        self.num_kernels = len(config.resblock_kernel_sizes)
        ch = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(in_channels, ch, 7, padding=3)
        self.cond = nn.Conv1d(gin_channels, ch, 1) if gin_channels else None
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        out_ch = ch
        for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)):
            out_ch = ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(ch // 2**i, out_ch, kernel, rate, padding=(kernel - rate) // 2))
            for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(out_ch, k, tuple(d)))
        self.conv_post = nn.Conv1d(out_ch, 1, 7, padding=3, bias=False)
        self._pre = _Conv(self.conv_pre)
        self._ups = _wrap(self.ups)
        self._post = _Conv(self.conv_post)
        self._prepared = False

    def prepare(self) -> None:
        """(Re)build the channels-last weight copies; call after loading weights.

        The average over residual blocks (x / num_kernels) is folded into the next layer's
        weights: leaky ReLU is positively homogeneous, so lrelu(x / n) = lrelu(x) / n.
        """
        fold = 1.0 / self.num_kernels
        self._pre.prepare()
        for i, up in enumerate(self._ups):
            up.prepare(fold if i > 0 else 1.0)
        self._post.prepare(fold)
        for block in self.resblocks:
            for attr in ("_fast", "_fast1", "_fast2"):
                for conv in getattr(block, attr, []):
                    conv.prepare()
        self._prepared = True

    def plan_window(self, start: int, stop: int, frames: int) -> DecoderWindow:
        """What decoding output frames [start, stop) of a `frames`-long latent reads (window.py)."""
        stages = []
        for i, up in enumerate(self.ups):
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            # The blocks of a stage all read the stage input and are summed: the widest one counts.
            reaches = [cast(ResBlock1 | ResBlock2, block).reach() for block in blocks]
            reach = (max(r[0] for r in reaches), max(r[1] for r in reaches))
            stages.append(Stage(cast(nn.ConvTranspose1d, up), reach))
        return plan_window(start, stop, frames, pre=self.conv_pre, stages=stages, post=self.conv_post)

    def forward(
        self,
        x: torch.Tensor,
        g: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        window: DecoderWindow | None = None,
    ) -> torch.Tensor:
        """[b, c, frames] -> [b, 1, samples].

        `frame_mask` [b, 1, frames] is only needed for padded batches: zeroing the padding after
        every layer makes each item see exactly the zero padding it would see alone.
        With `window` (from `plan_window`), `x` is the latent slice `window.input` and the result
        the samples of frames [window.start, window.stop), equal to those of the whole decode.
        """
        if not self._prepared:
            self.prepare()
        if window is not None and frame_mask is not None:
            raise ValueError("a decoder window is cut from one unpadded latent: no frame mask")
        points = window.points if window is not None else ()
        at = points[0] if points else (0, 0)

        def crop(x: torch.Tensor, point: int) -> torch.Tensor:
            # x holds the absolute interval starting at at[0]; keep what the later layers read.
            nonlocal at
            lo, hi = points[point]
            x = x[..., lo - at[0] : hi - at[0]]
            at = (lo, hi)
            return x

        mask = None if frame_mask is None else frame_mask.unsqueeze(2)
        x = self._pre(x.unsqueeze(2).contiguous(memory_format=_CL))
        if points:
            x = crop(x, 1)
        if g is not None and self.cond is not None:
            x = x + self.cond(g).unsqueeze(2)
        x = _masked(x, mask)
        for i, (up, rate) in enumerate(zip(self._ups, self.upsample_rates, strict=True)):
            x = up(F.leaky_relu(x, LRELU_SLOPE, inplace=True))  # x is our own temporary here
            if points:
                at = (at[0] * rate, at[0] * rate + x.shape[-1])
                x = crop(x, 2 + 2 * i).contiguous(memory_format=_CL)
            if mask is not None:
                mask = torch.repeat_interleave(mask, rate, dim=3)
                x = x.mul_(mask)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            needed = any(cast(ResBlock1 | ResBlock2, block).uses_activated(x, mask) for block in blocks)
            activated = _masked(F.leaky_relu(x, LRELU_SLOPE), mask) if needed else None  # blocks start with it
            xs = blocks[0](x, mask, activated)
            for block in blocks[1:]:
                xs += block(x, mask, activated)
            del activated
            x = xs  # the division by num_kernels lives in the next layer's weights
            if points:
                x = crop(x, 3 + 2 * i).contiguous(memory_format=_CL)
        # The original uses leaky_relu's default slope (0.01) here, not LRELU_SLOPE.
        x = self._post(F.leaky_relu(x, inplace=True))
        if points:
            x = crop(x, len(points) - 1)
        return torch.tanh_(x).squeeze(2)
