#!/usr/bin/env python
"""Django's command-line utility for the TTS gateway."""

import os
import sys


def main() -> None:
    # base = local defaults (SQLite, file cache, embedded broker URL); production is opt-in.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")
    if sys.argv[1:2] == ["run_event_consumer"]:
        # The consumer is one process serving its own /metrics. Left set (the stack shares one
        # environment), prometheus_client would write its values into the web workers'
        # multiprocess folder and the web's /metrics would report them a second time.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        os.environ.pop("prometheus_multiproc_dir", None)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
