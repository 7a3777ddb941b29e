"""Which part of each intermediate signal a decoder window needs: its receptive field.

Decoding a window of frames [start, stop) of a sentence's latent gives the same samples as
decoding the whole latent when every layer sees, around the samples that lead to the window's
output, the same values it would see in the whole run: real neighbours inside the sentence and
the convolutions' zero padding only at the sentence's true edges. `DecoderWindow` walks the
generator's layers backwards from the wanted output and records, at every point between two
layers, the absolute interval that is needed (clipped to the sentence). The forward pass crops
to these intervals as it goes, so the costly high-rate layers compute almost nothing twice: the
context is wide only at the low-rate input, where samples are cheap.

The intervals come from the layers' own kernel sizes, dilations, strides and paddings; nothing
here is tuned to one voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn


def conv_reach(conv: nn.Conv1d) -> tuple[int, int]:
    """(left, right) samples a stride-1 Conv1d output reads beyond its own position."""
    span = (int(conv.kernel_size[0]) - 1) * int(conv.dilation[0])
    left = int(conv.padding[0])  # type: ignore[arg-type]
    return left, span - left


def series_reach(convs: Sequence[nn.Conv1d]) -> tuple[int, int]:
    """Reach of stride-1 convolutions applied one after the other."""
    left = right = 0
    for conv in convs:
        a, b = conv_reach(conv)
        left, right = left + a, right + b
    return left, right


def transposed_inputs(conv: nn.ConvTranspose1d, start: int, stop: int) -> tuple[int, int]:
    """Input interval [j0, j1) that output samples [start, stop) of a ConvTranspose1d read.

    Output n receives input j through tap k = n + padding - j * stride for 0 <= k < kernel.
    """
    kernel, stride, padding = int(conv.kernel_size[0]), int(conv.stride[0]), int(conv.padding[0])  # type: ignore[arg-type]
    low = start + padding - kernel + 1
    first = -((-low) // stride)  # ceil division
    last = (stop - 1 + padding) // stride
    return first, last + 1


@dataclass(frozen=True)
class Stage:
    """One upsampling stage: transposed conv, then residual blocks reading `reach` around."""

    up: nn.ConvTranspose1d
    reach: tuple[int, int]


@dataclass(frozen=True)
class DecoderWindow:
    """Needed absolute intervals for output frames [start, stop) of a `frames`-long latent.

    `points[0]` is the latent input (frames), then after conv_pre, after each stage's upsampling
    and after its residual blocks (samples at that stage's rate), and last the output samples.
    """

    start: int
    stop: int
    points: tuple[tuple[int, int], ...]
    rates: tuple[int, ...]  # samples per latent frame at each point

    @property
    def input(self) -> tuple[int, int]:
        return self.points[0]

    def shifted(self, frames: int) -> DecoderWindow:
        """The same window `frames` latent frames earlier (each point moves by frames * rate)."""
        points = tuple((lo - frames * r, hi - frames * r) for (lo, hi), r in zip(self.points, self.rates, strict=True))
        return DecoderWindow(self.start - frames, self.stop - frames, points, self.rates)

    def relative(self) -> DecoderWindow:
        """The window as seen from its own input slice: two windows with equal relative plans
        need the same crops, so their input slices can be decoded as one batch."""
        return self.shifted(self.points[0][0])


def plan_window(
    start: int,
    stop: int,
    frames: int,
    *,
    pre: nn.Conv1d,
    stages: Sequence[Stage],
    post: nn.Conv1d,
) -> DecoderWindow:
    """Walk the layers from the output back to the latent (see the module docstring)."""
    if not 0 <= start < stop <= frames:
        raise ValueError(f"window [{start}, {stop}) outside a latent of {frames} frames")
    rates = [1]
    for stage in stages:
        rates.append(rates[-1] * int(stage.up.stride[0]))

    def clip(lo: int, hi: int, rate: int) -> tuple[int, int]:
        return max(lo, 0), min(hi, frames * rate)

    final = rates[-1]
    need = (start * final, stop * final)
    points = [need]
    point_rates = [final]
    left, right = conv_reach(post)
    need = clip(need[0] - left, need[1] + right, final)
    for index in range(len(stages) - 1, -1, -1):
        stage, rate = stages[index], rates[index + 1]
        points.append(need)  # after the residual blocks
        need = clip(need[0] - stage.reach[0], need[1] + stage.reach[1], rate)
        points.append(need)  # after the upsampling
        point_rates += [rate, rate]
        lo, hi = transposed_inputs(stage.up, *need)
        need = clip(lo, hi, rates[index])
    points.append(need)  # after conv_pre
    left, right = conv_reach(pre)
    points.append(clip(need[0] - left, need[1] + right, 1))
    point_rates += [1, 1]
    return DecoderWindow(start, stop, tuple(reversed(points)), tuple(reversed(point_rates)))


def context_frames(plan: DecoderWindow) -> tuple[int, int]:
    """Frames of latent read before and after the window: its receptive field, as clipped."""
    lo, hi = plan.input
    return plan.start - lo, hi - plan.stop
