"""`manage.py create_api_token <username> [--staff] [--superuser] [--password PW] [--name N]`.

Creates the user when missing and prints a NEW API key (the key last, on stdout). Keys are
stored hashed, so an existing key cannot be printed again: each call makes a fresh key named
`--name` (default "cli") and revokes the user's earlier keys of that name, so repeated calls
(devstack runs this at every start) do not pile up live keys.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from gateway.account_models import ApiKey
from gateway.apikeys import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Create the user if missing and print a new API key for it (revoking its earlier key of that name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--staff", action="store_true", help="admin access to jobs, API keys and quotas (not a superuser)"
        )
        parser.add_argument("--superuser", action="store_true", help="also a superuser (every admin permission)")
        parser.add_argument("--password", help="set this password (for the admin login)")
        parser.add_argument("--name", default="cli", help="the key's name (default: cli)")

    def handle(
        self, *args: Any, username: str, staff: bool, superuser: bool, password: str | None, name: str, **options: Any
    ) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(username=username)
            if staff or superuser:
                user.is_staff = True
            if superuser:
                user.is_superuser = True
            if password is not None and not user.check_password(password):
                user.set_password(password)
            elif created and password is None:
                user.set_unusable_password()
            user.save()
            if staff and not user.is_superuser:
                # Staff operate the service: jobs, outbox, keys and quotas, not users or groups.
                user.user_permissions.add(*Permission.objects.filter(content_type__app_label="gateway"))
            for old in ApiKey.objects.filter(owner=user, name=name, revoked_at__isnull=True):
                api_key_revoke(key=old)
            _, raw_key = api_key_create(owner=user, name=name)
        if created:
            role = " (superuser)" if superuser else " (staff)" if staff else ""
            self.stderr.write(f"created user {username!r}{role}")
        self.stdout.write(raw_key)
