"""The gateway's Postgres settings bind parameters on the server, so that Postgres parses and
plans a statement a connection keeps running once, not on every run (a submit is 7 statements,
an applied batch of events 2). Off, for poolers that cannot carry prepared statements, Django's
client-side binding stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler

from tts_project.settings.base import PREPARE_THRESHOLD, _database

pytestmark = [pytest.mark.integration]

URL = "postgres://postgres@127.0.0.1:5432/postgres"
STATEMENT = "SELECT 1 + %s::int"


@contextmanager
def service_connection(django_db_blocker: Any) -> Iterator[BaseDatabaseWrapper]:
    """A connection made from the service's settings for `URL` (without the pool: the pool only
    hands connections out; binding and preparing happen on each one)."""
    config = _database(URL)
    config["OPTIONS"].pop("pool", None)
    handler = ConnectionHandler({"default": config})
    connection = handler["default"]
    with django_db_blocker.unblock():
        try:
            yield connection
        finally:
            connection.close()


def prepared_after(connection: BaseDatabaseWrapper, runs: int) -> list[str]:
    """The statements prepared on this connection's session after `runs` runs of STATEMENT."""
    with connection.cursor() as cursor:
        for value in range(runs):
            cursor.execute(STATEMENT, [value])
            assert cursor.fetchone() == (1 + value,)
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_past_the_threshold_is_prepared_on_the_server(
    django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS", raising=False)
    with service_connection(django_db_blocker) as connection:
        assert prepared_after(connection, PREPARE_THRESHOLD - 1) == []
    with service_connection(django_db_blocker) as connection:
        assert prepared_after(connection, PREPARE_THRESHOLD + 1) == ["SELECT 1 + $1::int"]


def test_turned_off_parameters_are_bound_by_the_client_and_nothing_is_prepared(
    django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    assert "server_side_binding" not in _database(URL).get("OPTIONS", {})
    with service_connection(django_db_blocker) as connection:
        assert prepared_after(connection, 3 * PREPARE_THRESHOLD) == []
