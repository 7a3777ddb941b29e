"""bench/chaos.py --quick as a test: processes crash, the broker, the consumer, Redis and Postgres
go down and come back, messages are stolen and jobs cancelled, and still every accepted job ends
exactly once with the right audio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
FINAL_LINE = re.compile(
    r"^jobs (\d+)  ended (\d+)  lost (\d+)  doubled (\d+)  wrong_audio (\d+)  failed (\d+)  cancelled (\d+)$", re.M
)


def test_every_accepted_job_ends_exactly_once_with_the_right_audio_under_faults() -> None:
    result = subprocess.run(
        [sys.executable, "bench/chaos.py", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    output = result.stdout + result.stderr
    match = FINAL_LINE.search(output)
    assert match, f"no final line (exit {result.returncode}):\n{output[-4000:]}"
    jobs, ended, lost, doubled, wrong_audio, failed, cancelled = map(int, match.groups())
    assert jobs >= 50 and ended == jobs, output[-4000:]
    assert (lost, doubled, wrong_audio, failed) == (0, 0, 0, 0), output[-4000:]
    assert cancelled >= 1, output[-4000:]  # cancel reached running jobs
    assert result.returncode == 0, output[-4000:]
