"""The embedded default (SQLite) holds concurrent clients: many threads submitting at once
against gunicorn, with the event consumer and its relay writing beside it, all get 202."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 20
JOBS_PER_CLIENT = 10
WEB_OPTIONS = ("--workers", "2", "--threads", "4", "--bind")  # as `make run` serves it


def post_job(url: str, token: str, index: int) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": f"Concurrent job number {index}."}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())["id"]
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:300]


def test_sqlite_takes_concurrent_submissions_all_202(pulsar_broker: EmbeddedBroker, tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        DJANGO_SETTINGS_MODULE="tts_project.settings.base",
        DATABASE_URL=f"sqlite:///{database}",
        REDIS_URL="",
        PULSAR_URL=pulsar_broker.url,
        TTS_TOPIC_PREFIX=f"t{uuid.uuid4().hex[:10]}",
        MEDIA_ROOT=str(tmp_path / "media"),
        TTS_CONSUMER_METRICS_PORT="0",
        TTS_OUTBOX_RELAY_INTERVAL_S="0.2",
        TTS_OUTBOX_RELAY_AFTER_S="0.5",
        # One user submits every job at once: the per-user rate and quota are not under test here.
        TTS_THROTTLE_SUBMIT="",
        TTS_QUOTA_MAX_ACTIVE_JOBS="100000",
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    manage("migrate", "--verbosity", "0")
    token = manage("create_api_token", "load").strip().split()[-1]
    port = free_port()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "tts_project.wsgi:application", *WEB_OPTIONS, f"127.0.0.1:{port}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "web.log", "w"),  # noqa: SIM115 - closed with the process
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "run_event_consumer"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "consumer.log", "w"),  # noqa: SIM115
        ),
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()[-3000:]
                time.sleep(0.3)
        url = f"http://127.0.0.1:{port}/api/v1/jobs"
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda index: post_job(url, token, index), range(CLIENTS * JOBS_PER_CLIENT)))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)

    failures = [result for result in results if result[0] != 202]
    web_log = (tmp_path / "web.log").read_text()
    assert failures == [], f"{len(failures)} not 202, e.g. {failures[:3]}\n{web_log[-3000:]}"
    assert len({job_id for _, job_id in results}) == CLIENTS * JOBS_PER_CLIENT
    assert "database is locked" not in web_log + (tmp_path / "consumer.log").read_text()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT count(*) FROM gateway_synthesisjob").fetchone()[0] == 200
        # Every job message left the outbox (published after commit or by the relay).
        pending = connection.execute("SELECT count(*) FROM gateway_outboxmessage WHERE published_at IS NULL")
        assert pending.fetchone()[0] == 0
