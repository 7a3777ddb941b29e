"""Signals to a stop flag, and the exit that skips interpreter finalization."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def graceful_stop(*, what: str = "stopping", stop: threading.Event | None = None) -> Iterator[threading.Event]:
    """A stop flag that SIGTERM and SIGINT set; the previous handlers come back on exit.

    Installed only on the main thread (a command called in-process by a test runs elsewhere and
    gets the bare flag). A second signal is logged, not escalated: the process is already draining.
    """
    stop = stop or threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.warning("second %s: still %s, be patient", name, what)
        else:
            logger.info("%s received: %s", name, what)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for stop_signal in STOP_SIGNALS:
            previous[stop_signal] = signal.signal(stop_signal, request_stop)
    try:
        yield stop
    finally:
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)


def exit_without_finalizers(code: int) -> NoReturn:
    """Exit once everything is closed, skipping interpreter finalization.

    The Pulsar client can abort in its C++ destructors at interpreter shutdown ("terminate called
    without an active exception", apache/pulsar-client-python#256, seen here about one exit in
    five), turning a clean stop into exit code 134. Callers close their clients first, so only the
    streams need flushing.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
