"""promtool validates the alert rules and the scrape config, as Prometheus would at startup.

promtool comes with Prometheus (Debian: `apt-get install prometheus`; CI installs it). A missing
promtool fails these tests: a skip would let a broken rule file reach production unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .promql import ALERTS_FILE, PROMETHEUS_CONFIG

PROMTOOL = os.environ.get("PROMTOOL", "promtool")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which(PROMTOOL)
    if path is None:
        pytest.fail(
            f"promtool not found ({PROMTOOL!r} on PATH). Install it: `apt-get install -y prometheus` "
            "(Debian/Ubuntu) or take it from a Prometheus release; or point $PROMTOOL at it."
        )
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(ALERTS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_config(promtool: str) -> None:
    # Also loads the rule files the config names (relative to the config's folder).
    result = run_promtool(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
