"""devstack.client.ApiClient.wait against a stand-in gateway: a 429 slows the poll down by its
Retry-After instead of failing it (the read rate is shared by every poller of one token), and
any other error still raises."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack.client import ApiClient, ApiError
from tests.http_stand_in import serving, url_of

JOB_ID = "6b1f0c1e-3d55-4d6e-9a51-4c7d2b0e9f10"


class StandIn(ThreadingHTTPServer):
    def __init__(self, answers: list[tuple[int, dict[str, str], dict]]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers  # (status, headers, body) per GET, the last one repeated
        self.gets: list[float] = []  # when each GET arrived (monotonic)
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_GET(self) -> None:
        assert self.path == f"/api/v1/jobs/{JOB_ID}", self.path
        with self.server.lock:
            self.server.gets.append(time.monotonic())
            status, headers, body = self.server.answers[min(len(self.server.gets), len(self.server.answers)) - 1]
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def serve(answers: list[tuple[int, dict[str, str], dict]]) -> Iterator[StandIn]:
    yield from serving(StandIn(answers))


THROTTLED = (429, {"Retry-After": "1"}, {"error": {"code": "throttled", "message": "slow down", "field": None}})
RUNNING = (200, {}, {"id": JOB_ID, "status": "running"})
SUCCEEDED = (200, {}, {"id": JOB_ID, "status": "succeeded"})


@pytest.fixture
def throttled_then_done() -> Iterator[StandIn]:
    yield from serve([RUNNING, THROTTLED, SUCCEEDED])


@pytest.fixture
def always_throttled() -> Iterator[StandIn]:
    yield from serve([THROTTLED])


@pytest.fixture
def missing_job() -> Iterator[StandIn]:
    yield from serve([(404, {}, {"error": {"code": "not_found", "message": "no such job", "field": None}})])


def test_wait_honours_retry_after_and_returns_the_final_job(throttled_then_done: StandIn) -> None:
    job = ApiClient(url_of(throttled_then_done), "token").wait(JOB_ID, timeout_s=10, poll_s=0.01)
    assert job == {"id": JOB_ID, "status": "succeeded"}
    gets = throttled_then_done.gets
    assert len(gets) == 3
    assert gets[1] - gets[0] < 0.5  # an ordinary poll interval after a 200
    assert gets[2] - gets[1] >= 0.95  # Retry-After: 1 after the 429


def test_wait_times_out_when_always_throttled(always_throttled: StandIn) -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"throttled \(429\)"):
        ApiClient(url_of(always_throttled), "token").wait(JOB_ID, timeout_s=2.5, poll_s=0.01)
    assert time.monotonic() - began < 2.5  # gives up rather than sleep past the deadline
    assert 2 <= len(always_throttled.gets) <= 3  # one poll per Retry-After second


def test_wait_raises_other_errors(missing_job: StandIn) -> None:
    with pytest.raises(ApiError) as raised:
        ApiClient(url_of(missing_job), "token").wait(JOB_ID, timeout_s=5, poll_s=0.01)
    assert raised.value.status == 404
    assert len(missing_job.gets) == 1
