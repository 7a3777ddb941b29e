"""Hashed API keys: created once, usable until revoked or expired, never stored in clear."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.account_models import ApiKey
from gateway.apikeys import api_key_create, api_key_resolve, api_key_revoke

from .factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def _client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_a_key_works_in_both_header_forms(scheme: str) -> None:
    user = UserFactory()
    _, raw_key = api_key_create(owner=user, name="laptop")
    response = _client(f"{scheme} {raw_key}").get(ME)
    assert response.status_code == 200, response.content
    assert response.json()["username"] == user.username
    assert response.json()["api_key"] == raw_key[:12]


def test_revoked_key_stops_working_at_once() -> None:
    key, raw_key = api_key_create(owner=UserFactory(), name="ci")
    client = _client(f"Bearer {raw_key}")
    assert client.get(ME).status_code == 200
    api_key_revoke(key=key)
    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_expired_key_stops_working() -> None:
    key, raw_key = api_key_create(
        owner=UserFactory(), name="short-lived", expires_at=timezone.now() + timedelta(hours=1)
    )
    client = _client(f"Token {raw_key}")
    assert client.get(ME).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(ME).status_code == 401


def test_resolve_builds_what_the_orm_would_with_the_owner_in_one_query() -> None:
    """The lookup is hand-written SQL: every field of the key and of its owner must come back as
    the ORM gives it (types, time zones), and `key.owner` must cost no second query."""
    owner = StaffFactory(first_name="Ada")
    created, raw_key = api_key_create(owner=owner, name="ci", expires_at=timezone.now() + timedelta(days=3))
    ApiKey.objects.filter(pk=created.pk).update(last_used_at=timezone.now())  # no write on resolve
    expected = ApiKey.objects.select_related("owner").get(pk=created.pk)
    with CaptureQueriesContext(connection) as queries:
        key = api_key_resolve(raw_key=raw_key)
        assert key is not None
        resolved_owner = key.owner
    assert len(queries) == 1, [query["sql"] for query in queries]
    for field in ApiKey._meta.concrete_fields:
        assert getattr(key, field.attname) == getattr(expected, field.attname), field.name
        assert type(getattr(key, field.attname)) is type(getattr(expected, field.attname)), field.name
    for field in type(owner)._meta.concrete_fields:
        assert getattr(resolved_owner, field.attname) == getattr(expected.owner, field.attname), field.name
    assert key.expires_at is not None and key.expires_at.tzinfo is not None
    assert resolved_owner.is_staff and resolved_owner.first_name == "Ada"
    assert not key._state.adding and key._state.db == "default"  # saved rows, as the ORM's


# Run on the embedded default's database in a process of its own (the suite's is Postgres):
# SQLite returns datetimes as text and booleans as integers, which the lookup must convert.
_SQLITE_RESOLVE = textwrap.dedent(
    """
    import django
    django.setup()
    from datetime import timedelta
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone
    from gateway.account_models import ApiKey
    from gateway.apikeys import api_key_create, api_key_resolve
    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("sqlite-key", password="unused", is_staff=True)
    created, raw_key = api_key_create(owner=owner, name="t", expires_at=timezone.now() + timedelta(days=1))
    key = api_key_resolve(raw_key=raw_key)
    expected = ApiKey.objects.select_related("owner").get(pk=created.pk)
    pairs = [(key, expected, ApiKey), (key.owner, expected.owner, get_user_model())]
    for got, want, model in pairs:
        for field in model._meta.concrete_fields:
            a, b = getattr(got, field.attname), getattr(want, field.attname)
            assert a == b and type(a) is type(b), (field.name, a, b)
    print("resolved", type(key.expires_at).__name__, type(key.owner.is_staff).__name__)
    """
)


@pytest.mark.integration
def test_resolve_converts_sqlite_values_as_the_orm_does(tmp_path: Path) -> None:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tts_project.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'keys.sqlite3'}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [sys.executable, "-c", _SQLITE_RESOLVE], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resolved datetime bool" in result.stdout


def test_inactive_owner_is_refused() -> None:
    user = UserFactory()
    _, raw_key = api_key_create(owner=user, name="x")
    user.is_active = False
    user.save()
    assert _client(f"Bearer {raw_key}").get(ME).status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer tts_not-a-real-key", "Token " + "x" * 500, "Bearer \u00e9t\u00e9"]
)
def test_malformed_or_unknown_keys_are_401(header: str) -> None:
    response = _client(header).get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("authentication_failed", "not_authenticated")


def test_database_holds_only_hashes() -> None:
    _, raw_key = api_key_create(owner=UserFactory(), name="secret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_apikey")
        dump = repr(cursor.fetchall())
    assert raw_key not in dump
    assert raw_key[12:] not in dump  # not even the secret part beyond the displayed prefix
    assert hashlib.sha256(raw_key.encode()).hexdigest() in dump
    assert raw_key.startswith("tts_") and len(raw_key) >= 40


def test_last_used_is_recorded() -> None:
    key, raw_key = api_key_create(owner=UserFactory(), name="x")
    assert key.last_used_at is None
    _client(f"Bearer {raw_key}").get(ME)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_create_api_key_command_prints_a_working_key_once(capsys: Any) -> None:
    user = UserFactory(username="alice")
    call_command("create_api_key", "alice", "--name", "deploy", "--expires-days", "7")
    raw_key = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(owner=user)
    assert key.name == "deploy"
    assert timedelta(days=6, hours=23) < key.expires_at - timezone.now() <= timedelta(days=7)
    assert _client(f"Bearer {raw_key}").get(ME).status_code == 200
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_key", "nobody")
    with pytest.raises(CommandError, match="positive"):
        call_command("create_api_key", "alice", "--expires-days", "0")


def test_create_api_token_alias_makes_the_user_and_a_fresh_key(capsys: Any) -> None:
    call_command("create_api_token", "demo", "--staff", "--password", "demo-pass-123")
    first = capsys.readouterr().out.strip()
    call_command("create_api_token", "demo", "--staff", "--password", "demo-pass-123")
    second = capsys.readouterr().out.strip()
    assert first != second  # a key cannot be shown twice: each call makes a new one ...
    assert _client(f"Token {first}").get(ME).status_code == 401  # ... and revokes the last of its name
    me = _client(f"Token {second}").get(ME).json()
    assert me["username"] == "demo" and me["is_staff"]
    demo = ApiKey.objects.get(hashed_key=hashlib.sha256(second.encode()).hexdigest()).owner
    assert demo.is_staff and not demo.is_superuser  # staff is its own flag
    assert demo.has_perm("gateway.change_userquota") and demo.has_perm("gateway.view_synthesisjob")
    assert not demo.has_perm("auth.change_user")
    assert demo.check_password("demo-pass-123")

    call_command("create_api_token", "root", "--superuser")
    capsys.readouterr()
    call_command("create_api_token", "plain")
    plain_key = capsys.readouterr().out.strip()
    plain = ApiKey.objects.get(hashed_key=hashlib.sha256(plain_key.encode()).hexdigest()).owner
    assert not plain.is_staff and not plain.has_usable_password()


def test_legacy_plaintext_tokens_are_hashed_by_the_migration() -> None:
    """0004 turns authtoken rows into hashed keys that keep working, and deletes the plaintext."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("gateway.migrations.0005_hash_legacy_tokens")
    user = UserFactory()
    legacy_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamptz)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, now())", [legacy_key, user.pk])
    try:
        with connection.schema_editor() as editor:
            migration.hash_legacy_tokens(apps, editor)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
    response = _client(f"Token {legacy_key}").get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_admin_creates_a_key_shown_once_and_revokes(client: Any) -> None:
    staff = StaffFactory()
    owner = UserFactory()
    client.force_login(staff)
    response = client.post(
        "/admin/gateway/apikey/add/",
        {"owner": owner.pk, "name": "from-admin", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    raw_key = next(text.split("The new API key is ")[1].split(" ")[0] for text in shown if "The new API key is" in text)
    key = ApiKey.objects.get(owner=owner)
    assert key.hashed_key == hashlib.sha256(raw_key.encode()).hexdigest()
    assert _client(f"Bearer {raw_key}").get(ME).status_code == 200
    page = client.get(f"/admin/gateway/apikey/{key.pk}/change/").content.decode()
    assert raw_key not in page and key.hashed_key not in page

    client.post("/admin/gateway/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert _client(f"Bearer {raw_key}").get(ME).status_code == 401
