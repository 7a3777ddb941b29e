"""A small HTTP client for the gateway's REST API, used by the end-to-end tests and benchmarks.

Standard library only, so a benchmark measures the service and not a client library.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# A 429 without a usable Retry-After: wait this long before the next poll.
DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_s(headers: Message) -> float:
    """The seconds a 429's Retry-After asks for (its delay form; the gateway sends no dates)."""
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class ApiClient:
    base_url: str
    token: str
    timeout_s: float = 30.0

    def request(
        self, method: str, path: str, payload: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, Message]:
        """The status, the body and the headers (names match in any case, as in HTTP)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def json(self, method: str, path: str, payload: Any = None, *, expect: int | tuple[int, ...] = 200) -> Any:
        status, body, _ = self.request(method, path, payload)
        expected = (expect,) if isinstance(expect, int) else expect
        if status not in expected:
            raise ApiError(status, body.decode(errors="replace"))
        return json.loads(body)

    def submit(self, text: str, **fields: Any) -> dict[str, Any]:
        return self.json("POST", "/api/v1/jobs", {"text": text, **fields}, expect=202)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, timeout_s: float = 120.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll until the job is final; raise TimeoutError with its last state otherwise.

        A 429 (the user's read rate, shared by every poller of the same token) is a request to
        slow down, not an error: the poll resumes after the answer's Retry-After.
        """
        deadline = time.monotonic() + timeout_s
        job: dict[str, Any] | None = None
        while True:
            status, body, headers = self.request("GET", f"/api/v1/jobs/{job_id}")
            pause = poll_s
            if status == 429:
                pause = max(poll_s, retry_after_s(headers))
            elif status == 200:
                job = json.loads(body)
                if job["status"] in FINAL_STATUSES:
                    return job
            else:
                raise ApiError(status, body.decode(errors="replace"))
            if time.monotonic() + pause > deadline:
                raise TimeoutError(f"job {job_id} not final after {timeout_s}s: {job or 'throttled (429)'}")
            time.sleep(pause)

    def done_event(self, job_id: str, *, timeout_s: float = 1800.0) -> dict[str, Any] | None:
        """Follow the job's server-sent events until `done`: its data, with `received_at` (this
        client's clock, when the event arrived), or None if the stream ended or failed first."""
        request = urllib.request.Request(f"{self.base_url}/api/v1/jobs/{job_id}/events")
        request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                event = ""
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "done":
                        return {**json.loads(line[6:]), "received_at": time.time()}
        except OSError:  # urllib's HTTPError (a non-200 answer) included
            return None
        return None

    def audio(self, job_id: str) -> bytes:
        status, body, _ = self.request("GET", f"/api/v1/jobs/{job_id}/audio")
        if status != 200:
            raise ApiError(status, body.decode(errors="replace"))
        return body

    def submit_and_wait(self, text: str, *, timeout_s: float = 120.0, **fields: Any) -> dict[str, Any]:
        return self.wait(self.submit(text, **fields)["id"], timeout_s=timeout_s)
