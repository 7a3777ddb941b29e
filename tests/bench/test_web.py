"""bench/web.py, shortened, as a test: both entry points serve, and every figure it promises is
printed, positive and finite (the figures themselves are the benchmark's, not this test's)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "health web cpu ms",
    "health web cpu ratio project/django",
    "submit web cpu ms",
    "submit web cpu ratio project/django",
)


def test_a_short_run_prints_positive_finite_figures() -> None:
    short = ["--rounds", "1", "--health-checks", "40", "--submits", "30", "--clients", "4"]
    command = [sys.executable, "bench/web.py", *short]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for figure in FIGURES:
        match = re.search(rf"^{re.escape(figure)} = (\S+)", result.stdout, re.M)
        assert match, f"no line '{figure} = X':\n{output[-4000:]}"
        value = float(match.group(1))
        assert math.isfinite(value) and value > 0, match.group(0)
