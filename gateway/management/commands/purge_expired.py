"""`manage.py purge_expired [--days D] [--dry-run]`: delete finished jobs past retention, with their audio."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from gateway.models import FINAL_STATUSES, SynthesisJob
from gateway.retention import jobs_purge_expired
from gateway.services import idempotency_keys_purge_expired


class Command(BaseCommand):
    help = (
        "Delete jobs (and their audio files) that finished more than TTS_RETENTION_DAYS ago, "
        "and Idempotency-Key records older than TTS_IDEMPOTENCY_KEY_TTL_HOURS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=None, help="default TTS_RETENTION_DAYS; 0 = keep all")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, days: float | None, dry_run: bool, **options: Any) -> None:
        retention_days = settings.TTS_RETENTION_DAYS if days is None else days
        if dry_run:
            cutoff = timezone.now() - timedelta(days=retention_days)
            expired = SynthesisJob.objects.filter(status__in=FINAL_STATUSES, finished_at__lt=cutoff)
            count = expired.count() if retention_days > 0 else 0
            self.stdout.write(f"{count} job(s) would be deleted (retention {retention_days:g} days)")
            return
        count = jobs_purge_expired(retention_days=retention_days)
        self.stdout.write(f"deleted {count} job(s) finished more than {retention_days:g} days ago")
        keys = idempotency_keys_purge_expired()
        self.stdout.write(f"deleted {keys} expired Idempotency-Key record(s)")
