"""What a new user does first: `make run` on the embedded defaults (SQLite, the embedded broker, the
file cache), then many clients at once. Every submission must get its 202 and every job succeed."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.stack import Stack, StackConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = [
    "Your order has shipped.",
    "The meeting starts at ten thirty.",
    "Turn left at the next intersection.",
    "Thanks for calling. How can I help you today?",
    "Battery low. Please connect the charger.",
    "Welcome back! You have three new messages.",
    "The train to Boston departs from platform six.",
    "Your appointment is confirmed for Tuesday.",
]
CLIENTS = 20
JOBS = 200


def test_twenty_clients_submit_two_hundred_jobs_on_the_embedded_defaults(tmp_path: Path) -> None:
    stack = Stack(StackConfig(var_dir=tmp_path, web_port=free_port(), consumer_metrics_port=free_port()))
    # Exactly the defaults `make run` uses, whatever this test process's environment says.
    stack.env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for name in ("REDIS_URL", "PULSAR_URL", "DJANGO_SETTINGS_MODULE"):
        stack.env.pop(name, None)
    # One user sends 200 jobs in a second or two: the default submit rate (120/min) and
    # active-job quota (100) would rightly refuse some (429), and so did a 100/s rate on a fast
    # machine (CI, 2026-12-03: 2 of 200). This test is about concurrency on the embedded
    # defaults, not the per-user limits (tests/gateway/test_throttling_quotas.py): no rate.
    stack.env["TTS_THROTTLE_SUBMIT"] = ""
    stack.env["TTS_QUOTA_MAX_ACTIVE_JOBS"] = str(JOBS)
    # Waiting on 200 jobs that are mostly final already is 200 back-to-back GETs: on a fast
    # machine more than devstack's 100/s read rate, which is not what this test is about either.
    stack.env["TTS_THROTTLE_READ"] = ""
    statuses: Counter[int] = Counter()
    job_ids: list[str] = []
    lock = threading.Lock()
    with stack:
        api = ApiClient(stack.gateway_url, stack.api_token, timeout_s=60)

        def client(index: int) -> None:
            for number in range(index, JOBS, CLIENTS):
                status, body, _ = api.request("POST", "/api/v1/jobs", {"text": TEXTS[number % len(TEXTS)]})
                with lock:
                    statuses[status] += 1
                    if status == 202:
                        job_ids.append(json.loads(body)["id"])

        threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == Counter({202: JOBS}), f"responses by status: {dict(statuses)}"
        final = Counter(api.wait(job_id, timeout_s=300)["status"] for job_id in job_ids)
    assert final == Counter({"succeeded": JOBS}), f"final statuses: {dict(final)}"
