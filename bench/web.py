"""Benchmark: the gateway's CPU per request, the project's ASGI entry point against Django's own.

Starts the stack without agents (Postgres when available, pulsar-lite, Redis, gunicorn with
uvicorn workers, the event consumer) once per entry point and round, alternating, and measures
the web workers' CPU (and Postgres's) per request:
  health: GET /healthz from 4 client threads (the floor every request pays);
  submit: POST /api/v1/jobs of one sentence from 20 client threads (the burst's request).
`tts_project.asgi:application` serves a sync view in one hop to a fixed pool of request threads
(signals, middleware chain and view together, as a threaded WSGI server would);
`django.core.asgi:get_asgi_application()` is Django's handler as it comes (a new thread per
request, the signals through `sync_to_async`, each middleware's process_request and
process_response in a thread hop of their own).

    .venv/bin/python bench/web.py              # 2 rounds, about 2 minutes on 2 cores
    .venv/bin/python bench/web.py --rounds 1 --submits 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import stack_cpu_s
from bench.isolation import BURST_TEXTS
from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import Stack, StackConfig

ENTRY_POINTS = {
    "project": "tts_project.asgi:application",
    "django": "django.core.asgi:get_asgi_application()",
}
WEB, POSTGRES = "web", "postgres (all processes)"


def _cpu_ms_per_request(stack: Stack, requests: int, clients: int, one: Callable[[int], None]) -> dict[str, float]:
    """Run `one(n)` for n in range(requests) from `clients` threads; CPU ms per request, and req/s."""
    before, began = stack_cpu_s(stack), time.perf_counter()

    def client(index: int) -> None:
        for n in range(index, requests, clients):
            one(n)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, after = time.perf_counter() - began, stack_cpu_s(stack)
    per = {name: 1000 * (after[name] - before[name]) / requests for name in (WEB, POSTGRES)}
    return per | {"per_s": requests / wall}


def measure(application: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    env = {
        "DJANGO_SETTINGS_MODULE": "tts_project.settings.base",
        "TTS_CACHE_ENABLED": "0",
        "TTS_THROTTLE_SUBMIT": "",
        "TTS_QUOTA_MAX_ACTIVE_JOBS": "1000000",
    }
    if postgres_available():
        env["DATABASE_URL"] = recreate_database("tts_bench_web")
    config = StackConfig(
        var_dir=Path(tempfile.mkdtemp(prefix="tts-bench-web-")),
        web_port=free_port(),
        consumer_metrics_port=free_port(),
        agents=(),
        web_application=application,
        extra_env=env,
    )
    with Stack(config) as stack:
        health_url = f"{stack.gateway_url}/healthz"

        def health(_: int) -> None:
            with urllib.request.urlopen(health_url, timeout=30) as response:
                response.read()

        clients = [ApiClient(stack.gateway_url, stack.api_token) for _ in range(args.clients)]

        def submit(n: int) -> None:
            clients[n % args.clients].submit(BURST_TEXTS[n % len(BURST_TEXTS)])

        for n in range(20):  # warm: URLconf, connections, the publisher's producer
            health(n)
            submit(n)
        return {
            "health": _cpu_ms_per_request(stack, args.health_checks, 4, health),
            "submit": _cpu_ms_per_request(stack, args.submits, args.clients, submit),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--health-checks", type=int, default=600)
    parser.add_argument("--submits", type=int, default=400)
    parser.add_argument("--clients", type=int, default=20, help="client threads of the submit phase")
    args = parser.parse_args()
    print(f"web benchmark: {args.rounds} round(s), entry points alternate; CPU per request in ms", flush=True)
    runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in ENTRY_POINTS}
    for round_index in range(args.rounds):
        for name, application in ENTRY_POINTS.items():
            result = measure(application, args)
            runs[name].append(result)
            print(
                f"[round {round_index + 1}] {name:8s} "
                + "  ".join(
                    f"{kind}: web {figures[WEB]:.2f} ms, postgres {figures[POSTGRES]:.2f} ms, {figures['per_s']:.0f}/s"
                    for kind, figures in result.items()
                ),
                flush=True,
            )

    def median(name: str, kind: str, figure: str) -> float:
        return statistics.median(run[kind][figure] for run in runs[name])

    print()
    for kind in ("health", "submit"):
        project, django = median("project", kind, WEB), median("django", kind, WEB)
        print(f"{kind} web cpu ms = {project:.2f} (django's handler {django:.2f})")
        print(f"{kind} web cpu ratio project/django = {project / django:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
