"""`manage.py create_api_key <username> [--name N] [--expires-days D]`: print a new API key once.

Only its hash is stored: the key printed here cannot be shown again (revoke it in the admin).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from gateway.apikeys import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an existing user and print it (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="what the key is for (default: cli)")
        parser.add_argument("--expires-days", type=float, default=None, help="expire after D days (default: never)")

    def handle(self, *args: Any, username: str, name: str, expires_days: float | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}; create it first (createsuperuser, or create_api_token)")
        if expires_days is not None and expires_days <= 0:
            raise CommandError("--expires-days must be positive")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days is not None else None
        key, raw_key = api_key_create(owner=user, name=name, expires_at=expires_at)
        expiry = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
        self.stderr.write(f"API key {key.prefix}… ({key.name}) for {username}{expiry}; it is shown only once:")
        self.stdout.write(raw_key)
