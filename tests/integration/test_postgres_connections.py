"""Many clients at once against the gateway on Postgres: every submission accepted, and the
connections bounded by the processes' pools, not by the number of requests.

Under Django's stock ASGI handler every request ran its sync code in a thread of its own; with
persistent per-thread connections 20 concurrent clients once opened Postgres's 100 connections and
got 503s.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import recreate_database
from devstack.stack import Stack, StackConfig

pytestmark = [pytest.mark.integration]

DATABASE = "tts_e2e_connections"
CLIENTS = 20
JOBS = 200
POOL_SIZE = 4  # per process: well under what 20 clients would open without a pool


def _connections(database: str) -> int:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()
    return int(row[0]) if row else 0


def test_twenty_clients_share_each_process_pool_of_postgres_connections(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": recreate_database(DATABASE),
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "DATABASE_POOL_MAX_SIZE": str(POOL_SIZE),
        "TTS_THROTTLE_SUBMIT": "",
        "TTS_THROTTLE_READ": "",
        "TTS_QUOTA_MAX_ACTIVE_JOBS": str(JOBS),
    }
    # No agents: the jobs stay queued; this is about the gateway's connections under load.
    config = StackConfig(
        var_dir=tmp_path, web_port=free_port(), consumer_metrics_port=free_port(), agents=(), extra_env=env
    )
    statuses: Counter[int] = Counter()
    peak = 0
    done = threading.Event()
    lock = threading.Lock()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _connections(DATABASE))
            done.wait(0.05)

    stack = Stack(config)
    stack.env.pop("DJANGO_SETTINGS_MODULE", None)  # the settings the service runs on, not the tests'
    with stack:
        api = ApiClient(stack.gateway_url, stack.api_token, timeout_s=60)

        def client(index: int) -> None:
            for number in range(index, JOBS, CLIENTS):
                status, _, _ = api.request("POST", "/api/v1/jobs", {"text": f"Order number {number} has shipped."})
                with lock:
                    statuses[status] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        listed = api.json("GET", "/api/v1/jobs?page_size=1&status=queued")["count"]
    assert statuses == Counter({202: JOBS}), f"responses by status: {dict(statuses)}"
    assert listed == JOBS
    # Two web workers and the consumer (main loop and relay thread), a pool each.
    assert 0 < peak <= 3 * POOL_SIZE, f"{peak} connections at the peak"
