"""bench/web.py, shortened, as a test: both entry points serve, and every figure it promises is
printed, positive and finite (the figures themselves are the benchmark's, not this test's)."""

from __future__ import annotations

import pytest

from .figures import run_and_check_figures

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

FIGURES = (
    "health web cpu ms",
    "health web cpu ratio project/django",
    "submit web cpu ms",
    "submit web cpu ratio project/django",
)


def test_a_short_run_prints_positive_finite_figures() -> None:
    short = ["--rounds", "1", "--health-checks", "40", "--submits", "30", "--clients", "4"]
    run_and_check_figures("web.py", short, FIGURES, timeout_s=240)
