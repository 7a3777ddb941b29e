#!/usr/bin/env python
"""Django's command-line utility for the TTS gateway."""

import os
import sys

# Commands that hold a Pulsar client until they stop: they close it themselves, then exit
# without interpreter finalization (see tts_runtime.exit_without_finalizers for why).
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
        from tts_runtime import exit_without_finalizers

        exit_without_finalizers(0)


if __name__ == "__main__":
    main()
