"""`manage.py sweep_media_orphans [--older-than S]`: remove audio files no job refers to."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gateway.services import media_sweep_orphans


class Command(BaseCommand):
    help = "Remove audio files no job refers to (and unfinished temporary WAVs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, default=None, help="seconds; default TTS_MEDIA_ORPHAN_AFTER_S")

    def handle(self, *args: Any, older_than: float | None, **options: Any) -> None:
        older_than_s = settings.TTS_MEDIA_ORPHAN_AFTER_S if older_than is None else older_than
        removed = media_sweep_orphans(older_than_s=older_than_s)
        self.stdout.write(f"removed {removed} orphan audio file(s) older than {older_than_s:.0f} s")
