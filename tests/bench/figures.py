"""Running a benchmark script as a test: it ends well and prints every figure it promises."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_and_check_figures(script: str, arguments: Sequence[str], figures: Sequence[str], *, timeout_s: int) -> str:
    """Run `bench/<script>`; each figure must be printed as `<figure> = X`, X positive and finite.

    Returns the standard output for further checks."""
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for figure in figures:
        match = re.search(rf"^{re.escape(figure)} = (\S+)", result.stdout, re.M)
        assert match, f"no line '{figure} = X':\n{output[-4000:]}"
        value = float(match.group(1))
        assert math.isfinite(value) and value > 0, match.group(0)
    return result.stdout
