"""RateLimitedLog: one record per interval, and the next one counts what was left out."""

from __future__ import annotations

import logging

import pytest

from tts_runtime import RateLimitedLog

logger = logging.getLogger("tests.rate_limited")


def test_one_record_per_interval_then_the_count_of_those_left_out(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr("tts_runtime.logs.time.monotonic", lambda: now[0])
    log = RateLimitedLog(logger, interval_s=30.0)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for _ in range(4):
            log("cache %s failed", "get")
        now[0] += 31.0
        log("cache %s failed", "put")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["cache get failed", "cache put failed (3 similar left out since the last report)"]
    assert all(record.levelno == logging.WARNING and not record.exc_info for record in caplog.records)


def test_the_traceback_of_the_handled_exception_at_the_level_asked(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logger, logging.ERROR, exc_info=True)
    with caplog.at_level(logging.ERROR, logger=logger.name):
        try:
            raise ConnectionError("down")
        except ConnectionError:
            log("counter unavailable")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[0] is ConnectionError
