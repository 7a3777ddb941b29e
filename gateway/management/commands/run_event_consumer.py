"""`manage.py run_event_consumer [--no-relay] [--metrics-port N] [--max-seconds S]`.

Its own process: applies agent events and dead letters to the jobs, serves Prometheus
metrics on TTS_CONSUMER_METRICS_PORT, runs the outbox relay in a thread and the retention
purge in another (every TTS_RETENTION_INTERVAL_S). SIGTERM and
SIGINT finish the message in hand, then stop.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gateway.consumer import EventConsumer, start_metrics_server
from gateway.publisher import close_publisher
from gateway.relay import start_relay_thread
from gateway.retention import start_retention_thread
from tts_runtime import graceful_stop

logger = logging.getLogger("gateway.consumer")


class Command(BaseCommand):
    help = "Consume agent events and dead letters, apply them to jobs, relay the outbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay thread")
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="default TTS_CONSUMER_METRICS_PORT; 0 = no metrics"
        )
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long (tests)")

    def handle(
        self, *args: Any, no_relay: bool, metrics_port: int | None, max_seconds: float | None, **options: Any
    ) -> None:
        with graceful_stop(what="stopping after the current message") as stop:
            self._serve(stop, no_relay=no_relay, metrics_port=metrics_port, max_seconds=max_seconds)

    def _serve(
        self, stop: threading.Event, *, no_relay: bool, metrics_port: int | None, max_seconds: float | None
    ) -> None:
        port = settings.TTS_CONSUMER_METRICS_PORT if metrics_port is None else metrics_port
        if port:
            start_metrics_server(port=port)
        relay = None
        if not no_relay:
            relay = start_relay_thread(stop=stop, interval_s=settings.TTS_OUTBOX_RELAY_INTERVAL_S)
        # Housekeeping: delete jobs past TTS_RETENTION_DAYS (a daemon thread; stops with `stop`).
        start_retention_thread(stop=stop, interval_s=settings.TTS_RETENTION_INTERVAL_S)

        consumer = EventConsumer(service_url=settings.PULSAR_URL)
        try:
            # The broker may be down at startup (or restarting): wait for it instead of exiting.
            while not stop.is_set():
                try:
                    consumer.open()
                    break
                except Exception as error:
                    consumer.close()
                    logger.warning("cannot subscribe at %s (%s); retrying in 2 s", settings.PULSAR_URL, error)
                    stop.wait(2.0)
            if not stop.is_set():
                consumer.run(stop=stop, max_seconds=max_seconds)
        finally:
            stop.set()
            consumer.close()
            if relay is not None:
                relay.join(timeout=settings.TTS_PUBLISH_TIMEOUT_S + 5)
            close_publisher()
            logger.info("event consumer stopped")
