"""bench/winograd_layers.py as a test: every shape timed on every build, with the same bits."""

from __future__ import annotations

import re

import pytest
import torch

from vits.model import winograd

from .figures import run_and_check_figures

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(winograd.library() is None, reason="the Winograd kernel does not build here"),
]


def test_one_repeat_times_every_shape_and_the_builds_agree() -> None:
    stdout = run_and_check_figures("winograd_layers.py", ["--repeats", "1"], (), timeout_s=240)
    lines = [line for line in stdout.splitlines() if line.startswith("C=")]
    assert len(lines) == 4, stdout
    for line in lines:
        assert line.endswith("same bits"), line
        ratios = [float(value) for value in re.findall(r"/oneDNN (\d+\.\d+)", line)]
        expected = 2 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 1
        assert len(ratios) == expected and all(ratio > 0 for ratio in ratios), line
