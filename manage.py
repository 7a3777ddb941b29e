#!/usr/bin/env python
"""Django's command-line utility for the TTS gateway."""

import os
import sys


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


if __name__ == "__main__":
    main()
