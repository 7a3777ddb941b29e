"""The outbox relay loop, run by `relay_outbox --loop` and as a thread of the event consumer."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connections

from .services import outbox_relay_pending

logger = logging.getLogger(__name__)


def relay_forever(*, stop: threading.Event, interval_s: float, older_than_s: float | None = None) -> None:
    """Relay pending outbox records every `interval_s` until `stop` is set; never raises."""
    logger.info("outbox relay running every %.1fs", interval_s)
    while not stop.is_set():
        try:
            close_old_connections()  # drop a connection the database closed meanwhile
            outbox_relay_pending(older_than_s=older_than_s)
        except Exception:
            logger.exception("outbox relay round failed; retrying in %.1fs", interval_s)
        stop.wait(interval_s)
    connections.close_all()  # this thread's connections only
    logger.info("outbox relay stopped")


def start_relay_thread(*, stop: threading.Event, interval_s: float) -> threading.Thread:
    thread = threading.Thread(
        target=relay_forever, kwargs={"stop": stop, "interval_s": interval_s}, name="outbox-relay", daemon=True
    )
    thread.start()
    return thread
