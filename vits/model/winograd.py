"""Winograd convolutions for the decoder's residual blocks: fewer multiplications where the
decoder spends most of its time.

The residual blocks' convolutions (kernel 3, 5 or 7, dilated, 32 to 128 channels, stride 1) are
the bulk of synthesis, and oneDNN already runs them near the CPU's peak. Winograd's F(m, r)
computes m outputs of an r-tap filter from m + r - 1 products per channel pair instead of m r:
F(6, 3) and F(4, 5) on 8 transform points and F(4, 7) on 10 need 2.25x, 2.5x and 2.8x fewer. The
kernel (`winograd.c`, built for AVX2 + FMA or for AVX-512F, see `kernel_lanes`) also applies the
blocks' leaky ReLU while reading and adds the bias and the residual while writing, so no
activated copy of a 10-30 MB signal is made.

The C source is compiled on first use with the system's C compiler into a per-user cache
(about 1 s, once per source version). Without a compiler, or where `automatic` says oneDNN
(`Voice.load(conv_engine=...)`), the decoder keeps oneDNN's convolutions.

Results differ from oneDNN's in the last bits: on unit-scale signals about 5e-6 per layer for
F(6, 3) and F(4, 5) (transform points 0, +-1, +-2, +-1/2, infinity) and 2-3e-5 for F(4, 7)
(+-3/2 too), against 2e-6 for oneDNN's direct convolution.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from .machine import cpu_family

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("winograd.c")
COMPILE_FLAGS = ("-O3", "-std=c11", "-shared", "-fPIC")
# The kernel's builds by floats per vector: AVX2 + FMA (256 bits), AVX-512F (512 bits).
LANE_FLAGS = {8: ("-mavx2", "-mfma"), 16: ("-mavx512f", "-mavx2", "-mfma")}
# Outputs per tile by kernel size: F(6, 3) and F(4, 5) on 8 transform points, F(4, 7) on 10.
TILE_OUTPUTS = {3: 6, 5: 4, 7: 4}
_POINTS = (
    *(Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)),
    *(Fraction(3, 2), Fraction(-3, 2)),  # F(4, 7) only: 10 points
)

# (vendor, family) of the AVX-512 CPUs where `auto` takes the kernel: AMD 25 (Zen 4), AMD 26
# (Zen 5), Intel 6 (measured on a Xeon of model 167 with AMX: 0.23-0.47x oneDNN's time per layer).
MEASURED_AVX512_CPUS = (("AuthenticAMD", 25), ("AuthenticAMD", 26), ("GenuineIntel", 6))

ConvEngine = Literal["onednn", "winograd"]
CONV_ENGINES: tuple[ConvEngine, ...] = ("onednn", "winograd")

_lock = threading.Lock()
_build_lock = threading.Lock()
_library_error: str | None = None
_builds: dict[int, ctypes.CDLL] = {}  # by lanes, once built
_engine: ConvEngine = "onednn"
_decided: ConvEngine | None = None


def transforms(m: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(AT [m, n], G [n, r], BT [n, n]) of F(m, r) on n = m + r - 1 points (Toom-Cook, float64).

    The linear convolution of a degree-(r-1) and a degree-(m-1) polynomial is evaluated at the
    points (and infinity, the leading coefficient), multiplied and interpolated; the FIR filter
    y_i = sum_k g_k d_(i+k) is its transpose: y = AT ((G g) * (BT d))."""
    n = m + r - 1
    if n - 1 > len(_POINTS):
        raise ValueError(f"F({m}, {r}) needs {n} transform points; at most {len(_POINTS) + 1} are defined")
    points = _POINTS[: n - 1]

    def evaluation(degree: int) -> np.ndarray:
        rows = [[float(p**k) for k in range(degree)] for p in points]
        rows.append([1.0 if k == degree - 1 else 0.0 for k in range(degree)])
        return np.array(rows)

    return evaluation(m).T.copy(), evaluation(r), np.linalg.inv(evaluation(n)).T.copy()


def _cache_dir() -> Path:
    home_cache = Path.home() / ".cache" / "vits"
    try:
        home_cache.mkdir(parents=True, exist_ok=True)
        if os.access(home_cache, os.W_OK):
            return home_cache
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"vits-{os.getuid()}"


def build(lanes: int) -> ctypes.CDLL:
    """Compile winograd.c for `lanes` floats per vector (8: AVX2, 16: AVX-512F; once per source
    and flags) and load it. OSError where this CPU or this system cannot."""
    if lanes not in LANE_FLAGS:
        raise ValueError(f"the kernel is built for 8 or 16 lanes, not {lanes}")
    with _build_lock:
        if lanes in _builds:
            return _builds[lanes]
        capability = torch.backends.cpu.get_cpu_capability()
        if capability not in ("AVX2", "AVX512"):
            raise OSError(f"the CPU lacks AVX2 (torch reports {capability})")
        if lanes == 16 and capability != "AVX512":
            raise OSError(f"the CPU lacks AVX-512 (torch reports {capability})")
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise OSError("no C compiler (cc or gcc) on PATH")
        flags = (*COMPILE_FLAGS, *LANE_FLAGS[lanes])
        digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
        directory = _cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"winograd-{digest}.so"
        if not target.exists():
            partial = directory / f".winograd-{digest}-{os.getpid()}-{threading.get_ident()}.so"
            done = subprocess.run(
                [compiler, *flags, "-o", str(partial), str(SOURCE)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                partial.unlink(missing_ok=True)
                raise OSError(f"{compiler} failed on {SOURCE.name}: {done.stderr.strip()[:500]}")
            os.replace(partial, target)  # atomic: a concurrent builder's copy is identical
        compiled = ctypes.CDLL(str(target))
        compiled.vits_winograd_lanes.restype = ctypes.c_int
        if compiled.vits_winograd_lanes() != lanes:
            raise OSError(f"{target.name} was built for {compiled.vits_winograd_lanes()} lanes, not {lanes}")
        function = compiled.vits_winograd_conv
        function.restype = ctypes.c_int
        function.argtypes = [
            ctypes.c_void_p,  # x
            ctypes.c_void_p,  # res (NULL: none)
            ctypes.c_void_p,  # y
            ctypes.c_long,  # T
            ctypes.c_int,  # Cin
            ctypes.c_int,  # Cout
            ctypes.c_int,  # dilation
            ctypes.c_int,  # m
            ctypes.c_int,  # r
            ctypes.c_void_p,  # U
            ctypes.c_void_p,  # bias
            ctypes.c_void_p,  # BT
            ctypes.c_void_p,  # AT
            ctypes.c_float,  # slope
        ]
        _builds[lanes] = compiled
        return compiled


@functools.cache
def kernel_lanes() -> int:
    """Floats per vector of the build this process uses (decided once): 16 (AVX-512F) where torch
    runs AVX-512 code on 512-bit units, 8 (AVX2) elsewhere. (`WinogradConv(lanes=...)` takes
    either build where the CPU runs it.)

    AMD family 25 (Zen 4) runs AVX-512 on 256-bit units, where the AVX2 build was measured
    (0.68x oneDNN's time per sentence). Every build computes the same bits (winograd.c), so the
    choice changes only the speed."""
    if torch.backends.cpu.get_cpu_capability() == "AVX512" and cpu_family() != ("AuthenticAMD", 25):
        return 16
    return 8


def library() -> ctypes.CDLL | None:
    """This process's build of the kernel (`kernel_lanes`), or None (the reason is logged once)
    where it cannot be built here."""
    global _library_error
    lanes = kernel_lanes()
    with _lock:
        if lanes not in _builds and _library_error is None:
            try:
                build(lanes)
            except OSError as error:
                _library_error = str(error)
                logger.warning("Winograd convolutions unavailable, the decoder keeps oneDNN's: %s", error)
        return _builds.get(lanes)


def conv_engine() -> ConvEngine:
    """The engine the decoder's residual convolutions use now in this process."""
    return _engine


def set_conv_engine(engine: ConvEngine) -> None:
    """Use `engine` for the residual convolutions ("winograd" needs the kernel built, see `library`)."""
    global _engine
    if engine not in CONV_ENGINES:
        raise ValueError(f"conv engine must be one of {', '.join(CONV_ENGINES)}, got {engine!r}")
    if engine == "winograd" and library() is None:
        raise ValueError(f"the Winograd kernel is unavailable here: {_library_error}")
    _engine = engine


def choose_conv_engine(requested: ConvEngine | Literal["auto"]) -> ConvEngine:
    """Set `requested`, or for "auto" the engine `automatic` names for this machine (decided once
    per process). Returns the engine set."""
    global _decided
    if requested != "auto":
        set_conv_engine(requested)
        return requested
    if _decided is None:
        _decided = automatic()
    set_conv_engine(_decided)
    return _decided


def automatic() -> ConvEngine:
    """Winograd where the kernel builds, torch runs one intra-op thread (the agent's default: one
    per decode worker) and the kernel was measured faster than oneDNN on this kind of CPU: AVX2
    (Zen 3), AVX-512 on AMD family 25 (Zen 4: 256-bit units, the AVX2 build), on AMD family 26
    (Zen 5: 512-bit units, the AVX-512 build) and on Intel family 6 (the AVX-512 build); else oneDNN.

    Decided by the machine, not timed: every agent and every restart on a kind of machine must
    compute the same samples (the engines differ in the last bits, and bench/chaos.py compares
    each job's PCM with a reference process's, byte for byte). Timed at load, three agents
    starting at once on a loaded machine did not all choose alike. Measured against oneDNN:
    0.5-0.75x its time per layer on Zen 3; per sentence 0.68x on Zen 4 (the AVX2 build) and 0.72x
    on Zen 5 (the AVX-512 build; each against onnxruntime in its run: 0.633 and 0.879), 0.74x on
    an Intel Xeon (family 6 model 167; 0.614 against 0.835). The kernel runs on its calling
    thread, where oneDNN would use every intra-op thread.
    """
    if library() is None:
        return "onednn"  # library() logged why
    capability = torch.backends.cpu.get_cpu_capability()
    vendor, family = cpu_family()
    if capability == "AVX2":
        units = "AVX2"
    elif capability == "AVX512" and (vendor, family) in MEASURED_AVX512_CPUS:
        units = f"AVX-512 on {vendor} family {family}, the {kernel_lanes() * 32}-bit build"
    else:
        logger.info(
            "conv engine: oneDNN (torch's CPU capability %s, %s family %d: the kernel was not measured faster there)",
            capability,
            vendor or "unknown vendor",
            family,
        )
        return "onednn"
    if torch.get_num_threads() != 1:
        threads = torch.get_num_threads()
        logger.info("conv engine: oneDNN (intra-op threads %d; the Winograd kernel runs single-threaded)", threads)
        return "onednn"
    logger.info("conv engine: Winograd (%s, one intra-op thread)", units)
    return "winograd"


def active() -> bool:
    """Whether the Winograd engine is on (and not inside a torch.compile trace)."""
    return _engine == "winograd" and not torch.compiler.is_compiling()


def applies(x: torch.Tensor) -> bool:
    """Whether the Winograd engine is on and takes `x` (one float32 channels-last CPU image)."""
    return active() and image_fits(x)


def image_fits(x: torch.Tensor) -> bool:
    """One float32 channels-last CPU image [1, C, 1, T]: its memory is contiguous rows [T, C]."""
    return (
        x.dtype == torch.float32
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.shape[0] == 1
        and x.shape[2] == 1
        and x.is_contiguous(memory_format=torch.channels_last)
    )


def supports(conv: nn.Conv1d) -> bool:
    """Stride-1, odd-kernel, ungrouped float32 CPU convolutions with 'same' padding, input
    channels a multiple of the build's lanes and output channels of twice that."""
    kernel, dilation = int(conv.kernel_size[0]), int(conv.dilation[0])
    padding = conv.padding
    return (
        isinstance(padding, tuple)
        and int(padding[0]) == (kernel - 1) * dilation // 2
        and conv.groups == 1
        and int(conv.stride[0]) == 1
        and conv.weight.dtype == torch.float32
        and conv.weight.device.type == "cpu"
        and shape_fits(kernel, conv.in_channels, conv.out_channels)
    )


def shape_fits(kernel: int, in_channels: int, out_channels: int, lanes: int | None = None) -> bool:
    lanes = kernel_lanes() if lanes is None else lanes
    return kernel in TILE_OUTPUTS and in_channels % lanes == 0 and out_channels % (2 * lanes) == 0


class WinogradConv:
    """One convolution's transformed weights, and the call into the kernel."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, dilation: int, *, lanes: int | None = None
    ) -> None:
        """`weight` [out, in, k] and `bias` [out] of a 'same'-padded, stride-1 Conv1d, for the
        kernel's build of `lanes` floats per vector (default: this process's, `kernel_lanes`)."""
        outputs, inputs, kernel = weight.shape
        self.lanes = kernel_lanes() if lanes is None else lanes
        if not shape_fits(kernel, inputs, outputs, self.lanes) or weight.device.type != "cpu":
            raise ValueError(f"the Winograd kernel does not take a [{outputs}, {inputs}, {kernel}] CPU weight")
        self.kernel = int(kernel)
        self.dilation = int(dilation)
        self.in_channels, self.out_channels = int(inputs), int(outputs)
        # Every layer it takes ran faster than oneDNN on an AVX2 EPYC (Zen 3). F(2, 7) on 8 points,
        # tried first for kernel 7, did not on 32 channels (0.9-1.2x oneDNN's time with its
        # leaky ReLU); F(4, 7) on 10 points took 0.65-0.75x.
        self.tile = TILE_OUTPUTS[self.kernel]
        at, g, bt = transforms(self.tile, self.kernel)
        weight = weight.detach().to(torch.float64)
        # U[p][in][out] = sum_k G[p][k] W[out][in][k], packed by panels of 2 vectors of outputs:
        # [out / panel][p][in][panel]
        u = torch.einsum("pk,oik->pio", torch.from_numpy(g), weight).to(torch.float32)
        points, inputs, outputs = u.shape
        panel = 2 * self.lanes
        self.u = u.reshape(points, inputs, outputs // panel, panel).permute(2, 0, 1, 3).contiguous()
        bias = bias.detach() if bias is not None else torch.zeros(outputs)
        self.bias = bias.to(torch.float32).contiguous()
        self.bt = torch.from_numpy(bt).to(torch.float32).contiguous()
        self.at = torch.from_numpy(at).to(torch.float32).contiguous()

    @classmethod
    def of(cls, conv: nn.Conv1d) -> WinogradConv:
        if not supports(conv):
            raise ValueError(f"the Winograd kernel does not take {conv}")
        return cls(conv.weight, conv.bias, int(conv.dilation[0]))

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None, slope: float) -> torch.Tensor:
        """residual + conv(leaky_relu(x, slope)) for a [1, C, 1, T] channels-last float32 image;
        slope 1.0 = no activation, residual None = none. A new image; x is only read."""
        if not (image_fits(x) and x.shape[1] == self.in_channels):
            raise ValueError(f"the Winograd kernel takes one channels-last [1, {self.in_channels}, 1, T] image")
        rows = x[0, :, 0].t()  # the image's memory as rows [T, C], no copy
        res = None if residual is None else residual.contiguous(memory_format=torch.channels_last)[0, :, 0].t()
        return self.rows(rows, res, slope=slope).t().unsqueeze(0).unsqueeze(2)

    def rows(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, *, inplace: bool = False, slope: float = 1.0
    ) -> torch.Tensor:
        """residual + conv(leaky_relu(x, slope)) on rows x [T, in] -> [T, out]; with `inplace`
        the result is written into `residual`. x is only read."""
        lib = _builds.get(self.lanes) or (library() if self.lanes == kernel_lanes() else build(self.lanes))
        if lib is None:
            raise RuntimeError(f"the Winograd kernel is unavailable here: {_library_error}")
        if not (rows_fit(x) and x.shape[1] == self.in_channels):
            raise ValueError(f"the Winograd kernel takes contiguous float32 CPU rows [T, {self.in_channels}]")
        if residual is not None and (residual.shape != (x.shape[0], self.out_channels) or not rows_fit(residual)):
            raise ValueError(f"the residual must be contiguous float32 CPU rows [{x.shape[0]}, {self.out_channels}]")
        if inplace and residual is None:
            raise ValueError("inplace needs a residual to write into")
        out = residual if inplace and residual is not None else x.new_empty((x.shape[0], self.out_channels))
        status = lib.vits_winograd_conv(
            x.data_ptr(),
            None if residual is None else residual.data_ptr(),
            out.data_ptr(),
            x.shape[0],
            self.in_channels,
            self.out_channels,
            self.dilation,
            self.tile,
            self.kernel,
            self.u.data_ptr(),
            self.bias.data_ptr(),
            self.bt.data_ptr(),
            self.at.data_ptr(),
            slope,
        )
        if status != 0:
            raise RuntimeError(f"the Winograd kernel refused its arguments (status {status})")
        return out


def rows_fit(x: torch.Tensor) -> bool:
    """Contiguous float32 CPU rows [T, C] (the channels-last image's memory is such rows)."""
    return x.dtype == torch.float32 and x.device.type == "cpu" and x.dim() == 2 and x.is_contiguous()
