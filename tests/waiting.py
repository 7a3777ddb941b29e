"""Bounded polling for tests that wait on another process (a scrape, a broker, a stack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, *, interval_s: float = 0.5, fail: bool = True
) -> Any:
    """Poll until condition() is truthy; fail the test (or return the falsy value) at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    if fail:
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")
    return last
