"""bench/end_to_end.py --quick as a test: it runs through and prints every figure it promises."""

from __future__ import annotations

import pytest

from .figures import run_and_check_figures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

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
    stdout = run_and_check_figures("end_to_end.py", ["--quick"], FIGURES, timeout_s=240)
    assert "same ids: yes" in stdout  # the Piper recipe splits these sentences as vits does
