"""Benchmark: one decoder-shaped convolution layer by each build of the Winograd kernel and by oneDNN.

For each shape (channels, kernel, dilation, rows) it times, at one intra-op thread, the kernel's
AVX2 build, its AVX-512 build (where the CPU runs AVX-512) and torch's own leaky ReLU +
convolution (oneDNN), best of `--repeats` timings of 5 calls each, and checks that both builds
computed the same bits. Prints one line per shape and the ratios. oneDNN's time moves more than
the kernel's between runs on a shared machine (its 32-channel layers read and write 8 MB images).

    .venv/bin/python bench/winograd_layers.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch.nn import functional as F

from vits.model import winograd

# (channels, kernel, dilation, rows): the decoder's stages at a few seconds of audio.
SHAPES = ((128, 7, 1, 4096), (64, 5, 3, 16384), (32, 3, 5, 65536), (32, 7, 1, 65536))
SLOPE = 0.1


def best_s(call: Callable[[], object], repeats: int, calls: int = 5) -> float:
    call()
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - began) / calls)
    return min(timings)


def time_shape(
    channels: int, kernel: int, dilation: int, rows: int, builds: list[int], repeats: int
) -> tuple[dict[str, float], bool]:
    """Seconds per call by build and by oneDNN, and whether every build computed the same bits."""
    generator = torch.Generator().manual_seed(channels * 100 + kernel * 10 + dilation)
    weight = torch.randn(channels, channels, kernel, generator=generator) / (channels * kernel) ** 0.5
    bias = torch.randn(channels, generator=generator)
    x, residual = torch.randn(rows, channels, generator=generator), torch.randn(rows, channels, generator=generator)
    image = x.t().unsqueeze(0).contiguous()
    padding = (kernel - 1) * dilation // 2
    times: dict[str, float] = {}
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for lanes in builds:
            conv = winograd.WinogradConv(weight, bias, dilation, lanes=lanes)
            times[f"{lanes * 32}-bit build"] = best_s(partial(conv.rows, x, residual, slope=SLOPE), repeats)
            outputs.append(conv.rows(x, residual, slope=SLOPE))

        def onednn() -> torch.Tensor:
            return F.conv1d(F.leaky_relu(image, SLOPE), weight, bias, padding=padding, dilation=dilation)

        times["oneDNN"] = best_s(onednn, repeats)
    return times, all(torch.equal(outputs[0], other) for other in outputs[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if winograd.library() is None:
        print("the Winograd kernel does not build here")
        return 1
    capability = torch.backends.cpu.get_cpu_capability()
    builds = [8, 16] if capability == "AVX512" else [8]
    print(f"torch {torch.__version__}, capability {capability}, CPU {winograd.cpu_family()}")
    print(f"this process's build: {winograd.kernel_lanes()} lanes; times per call, best of {args.repeats} x 5")
    for channels, kernel, dilation, rows in SHAPES:
        times, same = time_shape(channels, kernel, dilation, rows, builds, args.repeats)
        figures = "  ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in times.items())
        ratios = "  ".join(
            f"{name}/oneDNN {seconds / times['oneDNN']:.2f}" for name, seconds in times.items() if name != "oneDNN"
        )
        if len(builds) == 2:
            ratios += f"  512/256-bit {times['512-bit build'] / times['256-bit build']:.2f}"
        bits = "same bits" if same else "BUILDS DIFFER"
        print(f"C={channels:3d} k={kernel} d={dilation} T={rows:6d}: {figures}  |  {ratios}  |  {bits}", flush=True)
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
