"""Short jobs must not wait behind long ones: latency isolation, measured end to end.

Starts the real stack itself (pulsar-lite broker, Postgres or SQLite, Redis, gunicorn, the
event consumer and two agent processes: one for `short`, one for `medium,long`), submits
through the HTTP API, and measures POST-to-audio-ready latency from the job's own
timestamps (queued_at, set in the POST's transaction, to finished_at, set when the WAV is
stored). The sentence cache is off, so repeats don't flatter.

Three phases, each on a fresh stack, the same short jobs at the same steady rate:
  (a) idle: short jobs alone;
  (b) isolated: short jobs while >= 10 long jobs (>= 5,000 characters each) are queued and running;
  (c) FIFO baseline: as (b) with TTS_SCHEDULING=fifo (one topic, arrival order).
It prints p50/p95 of each, the ratios (b)/(a) and (c)/(a) at p95, and the long jobs'
completion times in (b) and (c).

    .venv/bin/python bench/isolation.py            # full run, about 15-25 minutes on 2 cores
    .venv/bin/python bench/isolation.py --short-jobs 10 --long-jobs 3 --long-chars 2000  # quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import Stack, StackConfig

SHORT_TEXTS = [
    "Your order has shipped.",
    "The meeting starts at ten thirty. Please be on time.",
    "Turn left at the next intersection.",
    "Your verification code is four, seven, two, nine.",
    "Thanks for calling. How can I help you today?",
    "The package was delivered to the front door.",
    "Battery low. Please connect the charger.",
    "Welcome back! You have three new messages.",
    "The train to Boston departs from platform six.",
    "Your appointment is confirmed for Tuesday.",
]

LONG_SENTENCES = [
    "The history of the city began with a small settlement on the river, where traders met every spring.",
    "Over the following centuries the town grew into a busy port with warehouses, markets and shipyards.",
    "In 1852 a railway line connected it to the capital, and the population doubled within twenty years.",
    "Engineers built bridges, schools opened in every district, and the first electric lights arrived.",
    "Today visitors walk along the old harbor, where museums tell the story of those early merchants.",
    "Each summer a festival fills the streets with music, food stalls and boats decorated with flags.",
    "Scientists at the university study the river's ecology and the birds that nest along its banks.",
    "The council plans new parks, cleaner transport and housing that families on modest incomes can afford.",
]


def long_text(index: int, min_chars: int) -> str:
    parts: list[str] = []
    n = 0
    while sum(len(p) + 1 for p in parts) < min_chars:
        sentence = LONG_SENTENCES[(index + n) % len(LONG_SENTENCES)]
        parts.append(f"Part {n + 1}. {sentence}")
        n += 1
    return " ".join(parts)


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class PhaseResult:
    name: str
    short_latencies: list[float] = field(default_factory=list)
    long_latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def latency_of(job: dict) -> float:
    return parse_time(job["finished_at"]) - parse_time(job["queued_at"])


def wait_all(api: ApiClient, job_ids: list[str], timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    done: dict[str, dict] = {}
    while len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id in done:
                continue
            job = api.job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                done[job_id] = job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(job_ids) - len(done)} jobs not final after {timeout_s}s")
        time.sleep(0.25)
    return [done[job_id] for job_id in job_ids]


def run_phase(name: str, args: argparse.Namespace, *, scheduling: str, with_long: bool) -> PhaseResult:
    result = PhaseResult(name)
    env = {"TTS_SCHEDULING": scheduling, "TTS_CACHE_ENABLED": "0", "TTS_AGENT_THREADS": str(args.agent_threads)}
    if postgres_available():
        env["DATABASE_URL"] = recreate_database("tts_bench")
    var_dir = Path(tempfile.mkdtemp(prefix=f"tts-bench-{name}-"))
    stack = Stack(StackConfig(var_dir=var_dir, web_port=free_port(), consumer_metrics_port=free_port(), extra_env=env))
    print(f"[{name}] starting the stack in {var_dir} (scheduling={scheduling})", flush=True)
    started = time.monotonic()
    with stack:
        api = ApiClient(stack.gateway_url, stack.api_token)
        # One warm-up job per class group: the first synthesis pays lazy initialisation.
        wait_all(api, [api.submit("Warming up.")["id"], api.submit(long_text(0, 500))["id"]], 300)
        long_ids: list[str] = []
        if with_long:
            long_ids = [api.submit(long_text(i, args.long_chars))["id"] for i in range(args.long_jobs)]
            time.sleep(args.long_head_start_s)  # the long jobs are queued and running
        short_ids: list[str] = []
        for i in range(args.short_jobs):
            short_ids.append(api.submit(SHORT_TEXTS[i % len(SHORT_TEXTS)])["id"])
            time.sleep(args.interval_s)
        for job in wait_all(api, short_ids, args.timeout_s):
            if job["status"] == "succeeded":
                result.short_latencies.append(latency_of(job))
            else:
                result.failures.append(f"short {job['id']}: {job['status']} {job['error']}")
        for job in wait_all(api, long_ids, args.timeout_s):
            if job["status"] == "succeeded":
                result.long_latencies.append(latency_of(job))
            else:
                result.failures.append(f"long {job['id']}: {job['status']} {job['error']}")
    result.wall_s = time.monotonic() - started
    print(f"[{name}] done in {result.wall_s:.0f}s", flush=True)
    return result


def describe(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"n={len(values):3d}  p50={percentile(values, 0.5):7.2f}s  p95={percentile(values, 0.95):7.2f}s  "
        f"max={max(values):7.2f}s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short-jobs", type=int, default=30)
    parser.add_argument("--long-jobs", type=int, default=10)
    parser.add_argument("--long-chars", type=int, default=5000)
    parser.add_argument("--interval-s", type=float, default=1.0, help="gap between short submissions")
    parser.add_argument("--long-head-start-s", type=float, default=3.0)
    parser.add_argument("--agent-threads", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=3600)
    parser.add_argument("--phases", default="a,b,c", help="which of a,b,c to run")
    args = parser.parse_args()
    print(
        f"isolation benchmark: {args.short_jobs} short jobs every {args.interval_s}s; "
        f"{args.long_jobs} long jobs of >= {args.long_chars} chars; {os.cpu_count()} cores; "
        f"{args.agent_threads} torch thread(s) per agent; cache off",
        flush=True,
    )
    phases = {
        "a": ("(a) idle", "priority", False),
        "b": ("(b) isolated, under long load", "priority", True),
        "c": ("(c) FIFO baseline, under long load", "fifo", True),
    }
    results: dict[str, PhaseResult] = {}
    for key in args.phases.split(","):
        _label, scheduling, with_long = phases[key]
        results[key] = run_phase(key, args, scheduling=scheduling, with_long=with_long)

    print("\n=== short-job latency, POST to audio ready ===")
    for key, result in results.items():
        print(f"{phases[key][0]:38s} {describe(result.short_latencies)}")
    print("\n=== long-job completion time (queued to audio ready) ===")
    for key, result in results.items():
        if phases[key][2]:
            print(f"{phases[key][0]:38s} {describe(result.long_latencies)}")
    if "a" in results:
        base = percentile(results["a"].short_latencies, 0.95)
        print("\n=== ratios at p95 (goal: (b)/(a) <= 1.5) ===")
        for key in ("b", "c"):
            if key in results:
                ratio = percentile(results[key].short_latencies, 0.95) / base
                print(f"{key}/a = {ratio:.2f}")
    failures = [f for r in results.values() for f in r.failures]
    if failures:
        print("\nFAILED JOBS:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
