"""Fixtures shared by every test package: the real broker and the real Redis.

Integration tests use real services over real connections. Postgres comes through
pytest-django (DATABASE_URL, see tts_project/settings/test.py); Redis through REDIS_URL
(default redis://127.0.0.1:6379/15); the broker is a pulsar-lite process per test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.broker import EmbeddedBroker
from devstack.client import ApiClient
from tests.stack_harness import RunningStack, build_stack

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def pulsar_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real pulsar-lite broker for the whole session; tests use unique topic names."""
    broker = EmbeddedBroker(Path(tmp_path_factory.mktemp("broker"))).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def pulsar_url(pulsar_broker: EmbeddedBroker) -> str:
    return pulsar_broker.url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, flushed before and after the test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {TEST_REDIS_URL}: {error}. Start it (see README).")
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole service (gunicorn, consumer, two agents, broker) on Postgres and Redis, once per session."""
    stack = build_stack(tmp_path_factory.mktemp("stack"))
    stack.start()
    try:
        yield RunningStack(stack=stack, api=ApiClient(stack.gateway_url, stack.api_token))
    finally:
        stack.stop()
