"""`manage.py relay_outbox [--loop] [--interval S] [--older-than S]`: publish unconfirmed job messages.

The event consumer runs the same relay in a thread; this command is for a one-off catch-up
(after a broker outage) or a dedicated relay process.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gateway.relay import relay_forever
from gateway.services import outbox_relay_pending
from tts_runtime import graceful_stop


class Command(BaseCommand):
    help = "Re-publish outbox records the broker has not confirmed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep relaying until SIGTERM/SIGINT")
        parser.add_argument("--interval", type=float, default=None, help="seconds between rounds (--loop)")
        parser.add_argument(
            "--older-than", type=float, default=None, help="only records unconfirmed for this many seconds"
        )

    def handle(self, *args: Any, loop: bool, interval: float | None, older_than: float | None, **options: Any) -> None:
        if not loop:
            total = 0
            while True:  # drain the backlog batch by batch; stop when a round publishes nothing
                result = outbox_relay_pending(older_than_s=older_than)
                total += result.published
                if result.failed or not (result.published or result.skipped):
                    break
            self.stdout.write(f"published {total}, backlog {result.backlog}")
            if result.failed:
                self.stderr.write("the broker refused or timed out; the rest stays in the outbox")
            return
        with graceful_stop(what="stopping after the current round") as stop:
            relay_forever(
                stop=stop,
                interval_s=settings.TTS_OUTBOX_RELAY_INTERVAL_S if interval is None else interval,
                older_than_s=older_than,
            )
