"""The outbox relay loop, run by `relay_outbox --loop` and as a thread of the event consumer,
which also runs the stalled-job watchdog on each tick and the media sweep now and then."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

from .services import job_republish_stalled, media_sweep_orphans, outbox_relay_pending

logger = logging.getLogger(__name__)


def watchdog_round() -> int:
    """Re-publish stalled running jobs once (TTS_STALLED_JOB_AFTER_S; 0 = off); never raises."""
    stalled_after_s = settings.TTS_STALLED_JOB_AFTER_S
    if stalled_after_s <= 0:
        return 0
    try:
        return job_republish_stalled(stalled_after_s=stalled_after_s)
    except Exception:
        logger.exception("stalled-job watchdog round failed (stalled after %.0fs); next tick retries", stalled_after_s)
        return 0


def media_sweep_round() -> int:
    """Remove orphan audio files once (TTS_MEDIA_ORPHAN_AFTER_S); never raises."""
    try:
        return media_sweep_orphans(older_than_s=settings.TTS_MEDIA_ORPHAN_AFTER_S)
    except Exception:
        logger.exception("media sweep failed; the next one retries")
        return 0


def relay_forever(
    *, stop: threading.Event, interval_s: float, older_than_s: float | None = None, watchdog: bool = False
) -> None:
    """Relay pending outbox records every `interval_s` until `stop` is set; never raises.

    With `watchdog`, each tick also re-sends silent jobs (`watchdog_round`), and every
    TTS_MEDIA_SWEEP_INTERVAL_S (0 = never) the media sweep runs (`media_sweep_round`).
    """
    next_sweep = time.monotonic()
    logger.info("outbox relay running every %.1fs%s", interval_s, " with the stalled-job watchdog" if watchdog else "")
    while not stop.is_set():
        try:
            close_old_connections()  # drop a connection the database closed meanwhile
            outbox_relay_pending(older_than_s=older_than_s)
        except Exception:
            logger.exception("outbox relay round failed; retrying in %.1fs", interval_s)
        if watchdog:
            # After the relay: a record it writes is published on commit, or by the next round.
            watchdog_round()
            sweep_every_s = settings.TTS_MEDIA_SWEEP_INTERVAL_S
            if sweep_every_s > 0 and time.monotonic() >= next_sweep:
                media_sweep_round()
                next_sweep = time.monotonic() + sweep_every_s
        stop.wait(interval_s)
    connections.close_all()  # this thread's connections only
    logger.info("outbox relay stopped")


def start_relay_thread(*, stop: threading.Event, interval_s: float) -> threading.Thread:
    """The event consumer's relay thread: outbox relay and stalled-job watchdog."""
    thread = threading.Thread(
        target=relay_forever,
        kwargs={"stop": stop, "interval_s": interval_s, "watchdog": True},
        name="outbox-relay",
        daemon=True,
    )
    thread.start()
    return thread
