"""After a Postgres outage the gateway's connection pool is back within a request or two.

psycopg_pool retries a failed connect with a doubling delay (1, 2, 4, 8, 16 s ...) capped only
by `reconnect_timeout`, 300 s by default: after an outage of 20 s this test measured its first
connection 8.4 s after the server was back, every request meanwhile waiting out the pool's timeout.
The settings give up a try after 5 s, so the next request starts a fresh one at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import psycopg_pool
import pytest

from devstack.throwaway import ThrowawayPostgres
from tts_project.settings.base import _database

pytestmark = [pytest.mark.integration]

OUTAGE_S = 20.0


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


def _pool_options(url: str) -> dict:
    """The pool options the gateway's settings give Django for this database."""
    options = dict(_database(url)["OPTIONS"]["pool"])
    options["timeout"] = 1.0  # one request's wait: short here, so that the test polls often
    return options


def test_the_pool_reconnects_within_seconds_of_postgres_coming_back(postgres: ThrowawayPostgres) -> None:
    conninfo = postgres.url.replace("postgres://", "postgresql://", 1)
    pool = psycopg_pool.ConnectionPool(conninfo, open=True, **_pool_options(postgres.url))
    try:
        with pool.connection() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        postgres.stop_server()
        down_until = time.monotonic() + OUTAGE_S
        while time.monotonic() < down_until:  # requests keep coming during the outage, and fail
            # The first on the pooled (now dead) connection, the others waiting for a new one.
            with pytest.raises((psycopg.OperationalError, psycopg_pool.PoolTimeout)), pool.connection() as connection:
                connection.execute("SELECT 1")
        postgres.start()
        back = time.monotonic()
        while True:
            try:
                with pool.connection() as connection:
                    connection.execute("SELECT 1")
                break
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
                assert time.monotonic() - back < 30, f"no connection 30 s after Postgres returned: {error}"
        recovered_s = time.monotonic() - back
        assert recovered_s < 4.0, f"the pool took {recovered_s:.1f} s to reconnect after Postgres returned"
    finally:
        pool.close()
