"""bench/end_to_end.py --quick as a test: it runs through and prints every figure it promises."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "end-to-end ratio",
    "engine ratio",
    "gap from front end",
    "gap from clause splitting",
    "gap from thread pool",
    "gap from spinning",
    "gap from import order",
)


def test_quick_run_prints_positive_finite_ratios_and_gaps() -> None:
    result = subprocess.run(
        [sys.executable, "bench/end_to_end.py", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for figure in FIGURES:
        match = re.search(rf"^{re.escape(figure)} = (\S+)$", result.stdout, re.M)
        assert match, f"no line '{figure} = X':\n{output[-4000:]}"
        value = float(match.group(1))
        assert math.isfinite(value) and value > 0, match.group(0)
    assert "same ids: yes" in result.stdout  # the Piper recipe splits these sentences as vits does
