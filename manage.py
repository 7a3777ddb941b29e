#!/usr/bin/env python
"""Django's command-line utility for the TTS gateway."""

import logging
import os
import sys

# Commands that hold a Pulsar client until they stop. The client can abort in its C++
# destructors at interpreter shutdown ("terminate called without an active exception",
# apache/pulsar-client-python#256), turning a clean SIGTERM into exit code -6. These commands
# close the client themselves, so once they return only the streams need flushing.
PULSAR_COMMANDS = frozenset({"run_event_consumer", "relay_outbox"})


def main() -> None:
    # base = local defaults (SQLite, file cache, embedded broker URL); production is opt-in.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")
    # Every management command is one process (the event consumer serves its own /metrics;
    # migrate and friends serve none). Only gunicorn's workers share PROMETHEUS_MULTIPROC_DIR:
    # left set here, prometheus_client would write this process's values into the workers'
    # folder (or fail when it does not exist yet) and the web /metrics would report them too.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
    if len(sys.argv) > 1 and sys.argv[1] in PULSAR_COMMANDS:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
