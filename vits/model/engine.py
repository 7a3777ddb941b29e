"""Which library runs the row path's matrix products, MKL or oneDNN: decided by the machine.

The row path (`common.rows_conv`, `Conv1x1.rows`, the attention's Q/K/V product) is matrix
products over [time, channels] rows. Which library does them faster depends on the CPU, not
on the model:
- AVX2 AMD EPYC (Zen 3): MKL's SGEMM beat oneDNN's convolution on these layers.
- AVX-512 AMD EPYC (Zen 5): MKL picks its kernels by CPU vendor and ran its AVX2 code at about
  105 GFLOP/s on one thread. oneDNN used AVX-512 at 200-245 GFLOP/s on the same layers.
- AVX-512 AMD EPYC (Zen 4, 256-bit units): the two within noise of each other.

The engines compute different last bits, so the choice is a rule by CPU kind (`automatic`),
never a timing: every agent on a kind of machine must give the same samples. Float32 on the
CPU only: oneDNN has no float64 kernels, so the float64 tests and other devices always take
the plain torch products.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch

from .machine import cpu_family

logger = logging.getLogger(__name__)

RowEngine = Literal["mkl", "onednn"]
ROW_ENGINES: tuple[RowEngine, ...] = ("mkl", "onednn")
# AMD families whose AVX-512 runs on 512-bit units, where oneDNN's AVX-512 code beat MKL's AVX2 code 2x.
ONEDNN_AMD_FAMILY_FROM = 26
# oneDNN's row products run on a multiple of this many rows (`_padded`).
ROW_QUANTUM = 16
ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")

_engine: RowEngine = "mkl"


def row_engine() -> RowEngine:
    """The library the row path uses now in this process."""
    return _engine


def set_row_engine(engine: RowEngine) -> None:
    """Use `engine` for the row path in this process ("onednn" needs a torch built with oneDNN)."""
    global _engine
    if engine not in ROW_ENGINES:
        raise ValueError(f"row engine must be one of {', '.join(ROW_ENGINES)}, got {engine!r}")
    if engine == "onednn" and not ONEDNN_AVAILABLE:
        raise ValueError("this torch build has no oneDNN operators; use the 'mkl' row engine")
    _engine = engine


def choose_row_engine(requested: RowEngine | Literal["auto"]) -> RowEngine:
    """Set the engine `requested`, or for "auto" the machine's (`automatic`). Returns the engine set."""
    engine = automatic() if requested == "auto" else requested
    set_row_engine(engine)
    return engine


def automatic() -> RowEngine:
    """oneDNN where torch runs AVX-512 code on an AMD CPU of family 26 or later (512-bit units,
    where MKL runs its AVX2 code); MKL elsewhere: Zen 3 (MKL measured faster), Zen 4 (the two
    within noise), Intel (MKL's own AVX-512 code; on a Xeon of family 6 model 167 with the
    Winograd kernel, single-sentence ratio 0.622 with MKL against 0.654 with oneDNN).

    Not timed: timed at load (CPU time, the faster by a 1.25x margin), a restarted agent in a
    quick chaos run on a Zen 4 measured MKL at 6.24 ms against oneDNN's 4.71 ms while the other
    agents measured 3.9-5.0 ms for both, chose oneDNN alone, and the PCM of 6 jobs it (and the
    sentence cache it filled) served differed from the reference by up to 2 in 16 bits.
    """
    if not ONEDNN_AVAILABLE:
        return "mkl"
    vendor, family = cpu_family()
    capability = torch.backends.cpu.get_cpu_capability()
    engine: RowEngine = (
        "onednn" if capability == "AVX512" and vendor == "AuthenticAMD" and family >= ONEDNN_AMD_FAMILY_FROM else "mkl"
    )
    logger.info(
        "row engine %s (torch's CPU capability %s, %s family %d)", engine, capability, vendor or "unknown", family
    )
    return engine


def uses_onednn(x: torch.Tensor) -> bool:
    """Whether a row product on `x` goes to oneDNN (the engine chosen, float32, on the CPU)."""
    return _engine == "onednn" and x.dtype == torch.float32 and x.is_cpu


def linear_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x [t, in] @ weight[out, in].T + bias -> [t, out], by the chosen engine."""
    if uses_onednn(x):
        rows = x.shape[0]
        return torch.ops.mkldnn._linear_pointwise(_padded(x), weight, bias, "none", [], "")[:rows]
    return torch.mm(x, weight.t()) if bias is None else torch.addmm(bias, x, weight.t())


def conv_rows(
    x: torch.Tensor,
    image_weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    dilation: int,
    padding: int,
    residual: torch.Tensor | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """oneDNN's 'same' convolution of rows x [t, in] (+ residual [t, out]) -> rows [t, out].

    Rows [t, c] are the memory of a channels-last [1, c, 1, t] image, so the convolution reads
    and writes them in place as such; `image_weight` is the [out, in, 1, k] channels-last copy
    of the weights. With `inplace` the sum is written into `residual`. Without a residual the
    rows are padded with zero rows (see `_padded`): past the last row the convolution reads
    zeros either way, so the first t output rows are the same.
    """
    rows = x.shape[0]
    args = ([0, padding], [1, 1], [1, dilation], 1)
    if residual is None:
        image = _image(_padded(x))
        out = torch.ops.mkldnn._convolution_pointwise(image, image_weight, bias, *args, "none", [], "")
    else:
        image = _image(x.contiguous())
        binary: tuple[object, ...] = (*args, "add", None, None, [], None)
        other = _image(residual)
        if inplace and other.is_contiguous(memory_format=torch.channels_last):
            torch.ops.mkldnn._convolution_pointwise_.binary(other, image, image_weight, bias, *binary)
            return residual
        out = torch.ops.mkldnn._convolution_pointwise.binary(image, other, image_weight, bias, *binary)
        if inplace:
            return residual.copy_(out[0, :, 0].t())
    if not out.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out[0, :, 0].t()[:rows]


def _padded(x: torch.Tensor) -> torch.Tensor:
    """x [t, c] as contiguous rows padded with zero rows to a multiple of `ROW_QUANTUM`.

    oneDNN builds (and caches) its kernels per shape, about 0.4 ms per layer: with the frame
    count of every sentence a new shape, a voice's flow alone would need ~40 of them per length
    and outgrow the primitive cache. Rounded up, a few hundred shapes cover every sentence.
    """
    rows = x.shape[0]
    wanted = -(-rows // ROW_QUANTUM) * ROW_QUANTUM
    if wanted == rows:
        return x.contiguous()
    padded = x.new_empty(wanted, x.shape[1])
    padded[:rows] = x
    padded[rows:] = 0
    return padded


def _image(rows: torch.Tensor) -> torch.Tensor:
    return rows.t().unsqueeze(0).unsqueeze(2)
