"""`manage.py create_api_token <username> [--staff] [--password PW]`: print the user's API token.

Idempotent: creates the user when missing, keeps an existing token, prints the key last.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the user if missing and print its API token key (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the user staff + superuser (admin access)")
        parser.add_argument("--password", help="set this password (for the admin login)")

    def handle(self, *args: Any, username: str, staff: bool, password: str | None, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(username=username)
            changed = created
            if staff and not (user.is_staff and user.is_superuser):
                user.is_staff = user.is_superuser = True
                changed = True
            if password is not None and not user.check_password(password):
                user.set_password(password)
                changed = True
            elif created and password is None:
                user.set_unusable_password()
            if changed:
                user.save()
            token, _ = Token.objects.get_or_create(user=user)
        if created:
            self.stderr.write(f"created user {username!r}{' (staff)' if staff else ''}")
        self.stdout.write(token.key)
