"""Which library runs the row path's matrix products, MKL or oneDNN: measured once per process.

The row path (`common.rows_conv`, `Conv1x1.rows`, the attention's Q/K/V product) is matrix
products over [time, channels] rows. Which library does them faster depends on the CPU, not
on the model:
- AVX2 AMD EPYC (Zen 3): MKL's SGEMM beat oneDNN's convolution on these layers.
- AVX-512 AMD EPYC (Zen 5): MKL picks its kernels by CPU vendor and ran its AVX2 code at about
  105 GFLOP/s on one thread. oneDNN used AVX-512 at 200-245 GFLOP/s on the same layers.

So `measure_row_engine` times a flow-sized layer both ways and keeps the faster. Float32 on
the CPU only: oneDNN has no float64 kernels, so the float64 tests and other devices always
take the plain torch products.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import torch

logger = logging.getLogger(__name__)

RowEngine = Literal["mkl", "onednn"]
ROW_ENGINES: tuple[RowEngine, ...] = ("mkl", "onednn")
# oneDNN must beat MKL by this factor to be chosen, so that on a machine where the two are close,
# noise does not make agents (or an agent and its restart) pick differently: the engines' audio
# differs in the last bits. Where oneDNN won, it won by 2x.
_ONEDNN_MARGIN = 1.25
# oneDNN's row products run on a multiple of this many rows (`_padded`).
ROW_QUANTUM = 16
ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")

_engine: RowEngine = "mkl"
_measured: RowEngine | None = None


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
    """Set the engine `requested`, or for "auto" the one `measure_row_engine` finds faster (measured
    on the first call in the process, reused after). Returns the engine set."""
    global _measured
    if requested == "auto":
        if _measured is None:
            _measured = measure_row_engine()
        requested = _measured
    set_row_engine(requested)
    return requested


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


def measure_row_engine(frames: int = 400, channels: int = 192, kernel: int = 5, rounds: int = 9) -> RowEngine:
    """The faster engine for a flow-sized layer (a k=`kernel` convolution to 2x`channels` and a
    1x1 back) at the current intra-op thread count: the least CPU time of `rounds`, oneDNN only
    when it wins by a clear margin. About 0.1-0.2 s.

    Times the row path's own functions under each engine, the two alternating round by round
    and in process CPU time, not wall time: agents starting side by side (or any other load)
    slow whatever runs while they do, and timed one engine after the other an agent once saw
    MKL at 6.45 ms against oneDNN's 5.02 (both 3.3-3.5 ms alone) and chose differently from the
    others, whose audio then differed in the last bits. The process-wide engine is switched
    meanwhile; both compute the same layer, and the first `Voice.load` of a process, which
    measures, runs before any synthesis.
    """
    from .common import prepare_row_taps, rows_conv  # common builds on this module

    if not ONEDNN_AVAILABLE:
        return "mkl"
    global _engine
    chosen_before = _engine
    with torch.random.fork_rng(devices=[]):  # the process's random state stays as it was
        torch.manual_seed(0)
        taps = prepare_row_taps(torch.nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2))
        back = torch.randn(channels, 2 * channels) / channels
        x = torch.randn(frames, channels)
    seconds: dict[RowEngine, float] = dict.fromkeys(ROW_ENGINES, float("inf"))
    try:
        with torch.inference_mode():
            for warm_up in (True, True, *([False] * rounds)):  # oneDNN builds its kernels on first use
                for name in ROW_ENGINES:
                    _engine = name
                    took = _cpu_seconds(lambda: linear_rows(rows_conv(x, taps), back, None))
                    if not warm_up:
                        seconds[name] = min(seconds[name], took)
    finally:
        _engine = chosen_before
    engine: RowEngine = "onednn" if seconds["onednn"] * _ONEDNN_MARGIN < seconds["mkl"] else "mkl"
    logger.info(
        "row engine %s (one flow-sized layer, CPU time: mkl %.2f ms, onednn %.2f ms at %d thread(s))",
        engine,
        1000 * seconds["mkl"],
        1000 * seconds["onednn"],
        torch.get_num_threads(),
    )
    return engine


def _cpu_seconds(run: Callable[[], torch.Tensor]) -> float:
    """CPU seconds of this process (every thread: intra-op workers too) spent in `run()`."""
    started = time.process_time()
    run()
    return time.process_time() - started
