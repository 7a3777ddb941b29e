"""bench/piper_server.py's client side against a stand-in for Piper's /synthesize: every job is
counted once, each client waits for its reply, and a reply that is not a WAV is a failure.
(Piper itself runs only in the benchmark: it is a 46 MB install of its own.)"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.piper_server import PiperServer, run_piper_burst, synthesize
from tests.http_stand_in import serving, url_of

WAV = b"RIFF" + bytes(40)


class StandIn(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.texts: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"]
        with self.server.lock:
            self.server.texts[text] += 1
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
            seen = self.server.texts[text]
            self.server.in_flight -= 1  # before the reply: a client's next post cannot overlap it
        # "Flaky." answers its first post (the one timed alone) with a WAV, later ones with an error page.
        body = b"Internal error" if text == "Flaky." and seen > 1 else WAV
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    yield from serving(StandIn())


def test_every_job_is_sent_once_and_timed(stand_in: StandIn) -> None:
    server = PiperServer(url=url_of(stand_in), pid=os.getpid())

    burst = run_piper_burst(server, ["One.", "Two."], jobs=10, clients=3)

    assert burst.failures == []
    assert len(burst.latencies) == 10
    assert all(latency > 0 for latency in burst.latencies)
    assert burst.jobs_per_s > 0 and burst.alone_s > 0
    # Each text once alone, then the burst's ten alternate between the two.
    assert stand_in.texts == Counter({"One.": 6, "Two.": 6})
    assert stand_in.most_in_flight <= 3  # a client waits for its reply before the next post


def test_a_reply_that_is_no_wav_is_a_failure(stand_in: StandIn) -> None:
    server = PiperServer(url=url_of(stand_in), pid=os.getpid())

    burst = run_piper_burst(server, ["Flaky."], jobs=3, clients=1)

    assert len(burst.failures) == 3 and all("not a WAV" in failure for failure in burst.failures)
    assert burst.latencies == [] and burst.jobs_per_s == 0
    with pytest.raises(ValueError, match="not a WAV"):
        synthesize(server.url, "Flaky.")
