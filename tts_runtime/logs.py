"""A log line for a failure that repeats on every call while a dependency is down."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Logs at most one record per `interval_s`; the next one says how many were left out.

    `exc_info` adds the traceback of the exception being handled (call it from an `except`).
    Thread-safe: one instance may serve every thread of a process.
    """

    def __init__(
        self, logger: logging.Logger, level: int = logging.WARNING, *, interval_s: float = 30.0, exc_info: bool = False
    ) -> None:
        self._logger = logger
        self._level = level
        self.interval_s = interval_s
        self._exc_info = exc_info
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._left_out = 0

    def __call__(self, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval_s:
                self._left_out += 1
                return
            left_out, self._left_out, self._last = self._left_out, 0, now
        suffix = f" ({left_out} similar left out since the last report)" if left_out else ""
        self._logger.log(self._level, message + suffix, *args, exc_info=self._exc_info)
