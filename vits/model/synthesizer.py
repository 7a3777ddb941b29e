"""The VITS synthesizer, inference path only: text -> durations -> prior -> flow -> waveform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .attentions import TextEncoder
from .common import sequence_mask
from .config import ModelConfig
from .duration import DurationPredictor, StochasticDurationPredictor
from .flow import ResidualCouplingBlock
from .generator import Generator
from .window import DecoderWindow, series_reach

if TYPE_CHECKING:
    from ..parallel import WindowWorkers

# Parameters of the original training graph that inference never uses; loaders skip them.
TRAINING_ONLY_PREFIXES = ("enc_q.", "dp.post_", "dp.flows.1.", "net_d.")
# Compiled mode pads shorter latents to this many frames (above every size threshold at which
# the convolutions switch backend, which would otherwise each cost a recompilation).
COMPILED_MIN_FRAMES = 128


def _noise(
    shape_per_item: Sequence[tuple[int, int]],
    generators: Sequence[torch.Generator] | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Normal noise [b, c, max_t], drawn per item so an item's noise does not depend on the batch.

    Drawn on the CPU from CPU generators and then moved: a seed gives the same noise on every device.
    """
    channels = shape_per_item[0][0]
    max_t = max(t for _, t in shape_per_item)
    out = torch.zeros(len(shape_per_item), channels, max_t, dtype=dtype)
    for i, (c, t) in enumerate(shape_per_item):
        gen = generators[i] if generators is not None else None
        out[i, :, :t] = torch.randn((c, t), generator=gen, dtype=dtype)
    return out.to(device)


class SynthesizerTrn(nn.Module):
    """Module names follow the original `SynthesizerTrn` so state dicts map one to one."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        enc, dur, flow = config.encoder, config.duration, config.flow
        gin = config.gin_channels if config.n_speakers > 1 else 0
        self.enc_p = TextEncoder(
            enc.n_vocab,
            config.inter_channels,
            enc.hidden_channels,
            enc.filter_channels,
            enc.n_heads,
            enc.n_layers,
            enc.kernel_size,
            enc.window_size,
        )
        self.dp: nn.Module
        if dur.stochastic:
            self.dp = StochasticDurationPredictor(
                enc.hidden_channels, dur.kernel_size, dur.n_flows, dur.num_bins, dur.tail_bound, gin
            )
        else:
            self.dp = DurationPredictor(enc.hidden_channels, dur.filter_channels, dur.kernel_size, gin)
        self.flow = ResidualCouplingBlock(
            config.inter_channels,
            enc.hidden_channels,
            flow.kernel_size,
            flow.dilation_rate,
            flow.n_layers,
            flow.n_flows,
            gin,
        )
        self.dec = Generator(config.inter_channels, config.generator, gin)
        self.emb_g = nn.Embedding(config.n_speakers, gin) if gin else None
        self.hop_length = config.generator.hop_length
        self.compiled = False

    def enable_compile(self) -> None:
        """Run the flow and the decoder through torch.compile (inductor, dynamic shapes). Opt-in.

        Only these two: their structure does not depend on the input, and they take most of the
        time. The text encoder and duration predictors stay eager (compiling them recompiled and
        ran slower). Compilation happens on the first calls (`Voice.load(compile=True)` does it
        at load): two graphs each, one for inputs padded to COMPILED_MIN_FRAMES and one for longer
        inputs (dynamic length), not one per length.
        """
        if self.compiled:
            return
        flow, dec = cast(Any, self.flow), cast(Any, self.dec)
        flow.reverse = torch.compile(flow.reverse, dynamic=True)
        dec.forward = torch.compile(dec.forward, dynamic=True)
        self.compiled = True

    def prior(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        *,
        noise_scale: float,
        length_scale: float,
        noise_w: float,
        speakers: torch.Tensor | None = None,
        generators: Sequence[torch.Generator] | None = None,
        workers: WindowWorkers | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """ids [b, t] int64, lengths [b] -> (prior sample z_p [b, c, frames], y_mask [b, 1, frames], g).

        Text encoder, durations and the noise: everything before the flow. `generators` gives
        one torch.Generator per item (seeded noise); None uses the global RNG. `workers` (one
        unpadded item) share the text encoder's feed-forward layers.
        """
        batch = ids.shape[0]
        x_mask = sequence_mask(lengths, ids.shape[1]).unsqueeze(1).to(torch.float32)
        x, m_p, logs_p = self.enc_p(ids, x_mask, workers)
        g = self.emb_g(speakers).unsqueeze(-1) if (self.emb_g is not None and speakers is not None) else None

        if isinstance(self.dp, StochasticDurationPredictor):
            if noise_w > 0:
                dp_noise = _noise([(2, int(n)) for n in lengths], generators, x.dtype, x.device) * noise_w
            else:
                dp_noise = torch.zeros(batch, 2, x.shape[2], dtype=x.dtype, device=x.device)
            one = batch == 1 and int(lengths[0]) == ids.shape[1]  # unpadded: rows, no masks
            logw = self.dp.forward_one(x, dp_noise, g=g) if one else self.dp(x, x_mask, dp_noise, g=g)
        else:
            logw = self.dp(x, x_mask, g=g)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)
        y_lengths = torch.clamp_min(w_ceil.sum(dim=(1, 2)), 1).long()
        y_mask = sequence_mask(y_lengths).unsqueeze(1).to(x.dtype)

        # Expand phoneme statistics to frames: frame f belongs to phoneme p when
        # cum[p-1] <= f < cum[p]. The 0/1 path matrix makes this an exact matmul.
        cum = torch.cumsum(w_ceil.squeeze(1), dim=1)  # [b, t_x]
        frames = torch.arange(y_mask.shape[2], dtype=cum.dtype, device=cum.device).view(1, -1, 1)
        path = (frames < cum.unsqueeze(1)).to(x.dtype)  # [b, t_y, t_x]
        path = path - torch.nn.functional.pad(path, (1, 0))[:, :, :-1]
        path = path * y_mask.transpose(1, 2) * x_mask
        m_p = torch.bmm(path, m_p.transpose(1, 2)).transpose(1, 2)
        logs_p = torch.bmm(path, logs_p.transpose(1, 2)).transpose(1, 2)

        z_p = m_p
        if noise_scale > 0:
            eps = _noise([(m_p.shape[1], int(n)) for n in y_lengths.tolist()], generators, x.dtype, x.device)
            z_p = m_p + eps * torch.exp(logs_p) * noise_scale
        return z_p, y_mask, g

    def infer(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        *,
        noise_scale: float,
        length_scale: float,
        noise_w: float,
        speakers: torch.Tensor | None = None,
        generators: Sequence[torch.Generator] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [b, t] int64, lengths [b] -> (audio [b, samples], sample lengths [b])."""
        z_p, y_mask, g = self.prior(
            ids,
            lengths,
            noise_scale=noise_scale,
            length_scale=length_scale,
            noise_w=noise_w,
            speakers=speakers,
            generators=generators,
        )
        audio = self.decode(z_p, y_mask, g=g)
        return audio, y_mask.sum(dim=(1, 2)).long() * self.hop_length

    def latent(self, z_p: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """One unpadded prior sample [1, c, frames] through the flow: the decoder's input."""
        if z_p.shape[0] != 1:
            raise ValueError("latent() takes one unpadded item; padded batches go through decode()")
        if self.compiled:  # the compiled module's own graph stays unused here: any length runs eagerly
            flow = cast(Any, ResidualCouplingBlock).reverse
            return flow(self.flow, z_p, torch.ones_like(z_p[:, :1]), g=g)
        # As rows [frames, c]: their memory is the channels-last layout the decoder reads.
        return self.flow.reverse_rows(z_p[0].t(), g=g).t().unsqueeze(0)

    def flow_reach(self) -> int:
        """Latent frames the flow reads on either side of an output frame (symmetric padding).

        Each coupling layer's WaveNet runs its dilated convolutions in series; the layers run
        one after the other. 32 frames for Piper's medium voices.
        """
        reach = 0
        for layer in self.flow._reverse_order:
            left, right = series_reach(list(layer.enc.in_layers))  # type: ignore[arg-type]
            reach += max(left, right)
        return reach

    def latent_window(self, z_p: torch.Tensor, start: int, stop: int, g: torch.Tensor | None = None) -> torch.Tensor:
        """Frames [start, stop) of `latent(z_p, g)`, computed from z_p's frames within the flow's reach.

        Equal to the same frames of the whole-sentence flow: inside the sentence each layer sees
        its real neighbours, and at the sentence's edges the same zero padding.
        """
        frames = int(z_p.shape[2])
        if not 0 <= start < stop <= frames:
            raise ValueError(f"latent window [{start}, {stop}) outside a latent of {frames} frames")
        reach = self.flow_reach()
        lo, hi = max(0, start - reach), min(frames, stop + reach)
        latent = self.latent(z_p[:, :, lo:hi], g)
        return latent[:, :, start - lo : stop - lo]

    def decode_window(self, z: torch.Tensor, window: DecoderWindow, g: torch.Tensor | None = None) -> torch.Tensor:
        """Audio [b, samples] of frames [window.start, window.stop) of latents z [b, c, frames].

        Equal to the same samples of the whole decode (see model/window.py). Eager even in
        compiled mode: every window has its own crop offsets, which would each recompile.
        """
        lo, hi = window.input
        return Generator.forward(self.dec, z[:, :, lo:hi], g=g, window=window).squeeze(1)

    def decode(self, z_p: torch.Tensor, y_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Prior sample [b, c, frames] -> flow -> decoder -> audio [b, frames * hop_length]."""
        frames = y_mask.shape[2]
        frame_mask = y_mask if z_p.shape[0] > 1 else None
        if self.compiled:
            # Compiled graphs are specialized on convolution backends chosen by input size (and
            # on size 1): pad short inputs to a fixed length, masked like a padded batch, so that
            # every length runs one of two graphs. Contiguous input: strides are guarded too.
            z_p = z_p.contiguous()
            if frames < COMPILED_MIN_FRAMES:
                pad = COMPILED_MIN_FRAMES - frames
                z_p = torch.nn.functional.pad(z_p, (0, pad))
                y_mask = frame_mask = torch.nn.functional.pad(y_mask, (0, pad))
        z = self.flow.reverse(z_p, y_mask, g=g)
        audio = self.dec(z * y_mask, g=g, frame_mask=frame_mask)
        return audio.squeeze(1)[:, : frames * self.hop_length]
