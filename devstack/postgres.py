"""Fresh Postgres databases for end-to-end tests and benchmarks."""

from __future__ import annotations

import os

import psycopg

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def recreate_database(name: str, *, admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """Drop and create a Postgres database; return its URL for DATABASE_URL."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    host_part = admin_url.rsplit("/", 1)[0]
    return f"{host_part}/{name}".replace("postgresql://", "postgres://", 1)


def postgres_available(*, admin_url: str = POSTGRES_ADMIN_URL) -> bool:
    try:
        with psycopg.connect(admin_url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
