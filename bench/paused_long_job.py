"""A long job paused behind a flood of higher-priority work must not be taken for a lost one.

The case the stalled-job watchdog used to get wrong: one long job of about 90 sentences, then one
8-sentence medium job every second for `--flood-seconds`, with the watchdog's threshold cut to
`--stalled-after` seconds. The long job is preempted again and again; it keeps heartbeating while
paused, so it must end `succeeded` in its first attempt with no re-send.

Prints the longest time the running long job showed no new sentence (its longest pause; its agent
heartbeats every TTS_HEARTBEAT_INTERVAL_S meanwhile), and:

    long job = succeeded  attempt = 1  republished = 0

    .venv/bin/python bench/paused_long_job.py                  # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import recreate_database
from devstack.stack import Stack, StackConfig

SENTENCES = [
    "The history of the city began with a small settlement on the river.",
    "Over the centuries the town grew into a busy port with markets and shipyards.",
    "Engineers built bridges, and schools opened in every district.",
    "Today visitors walk along the old harbor and its museums.",
    "Each summer a festival fills the streets with music and food stalls.",
    "Scientists study the river's ecology and the birds along its banks.",
]


def text_of(sentences: int, tag: str) -> str:
    return " ".join(f"{tag} {n + 1}. {SENTENCES[n % len(SENTENCES)]}" for n in range(sentences))


def metric_total(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        page = response.read().decode()
    return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", page, re.M))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long-sentences", type=int, default=90)
    parser.add_argument("--flood-seconds", type=float, default=120.0)
    parser.add_argument("--stalled-after", type=float, default=8.0)
    parser.add_argument("--database", default="tts_bench_paused")
    args = parser.parse_args(argv)

    var_dir = Path(tempfile.mkdtemp(prefix="tts-paused-"))
    env = {
        "DATABASE_URL": recreate_database(args.database),
        "TTS_STALLED_JOB_AFTER_S": str(args.stalled_after),
        "TTS_HEARTBEAT_INTERVAL_S": str(max(1.0, args.stalled_after / 4)),
        "TTS_CACHE_ENABLED": "0",
        "TTS_AGENT_THREADS": "1",
        "TTS_THROTTLE_SUBMIT": "",
        "TTS_QUOTA_MAX_ACTIVE_JOBS": "100000",
    }
    stack = Stack(StackConfig(var_dir=var_dir, web_port=free_port(), consumer_metrics_port=free_port(), extra_env=env))
    with stack:
        api = ApiClient(stack.gateway_url, stack.api_token, timeout_s=30)
        long_id = api.submit(text_of(args.long_sentences, "Part"))["id"]
        samples: list[tuple[float, str, int]] = []  # (time, status, sentences_done)
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                job = api.job(long_id)
                samples.append((time.monotonic(), job["status"], job["sentences_done"]))
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    return
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        flood_until = time.monotonic() + args.flood_seconds
        flood = 0
        while time.monotonic() < flood_until:
            api.submit(text_of(8, f"Notice {flood}"))
            flood += 1
            time.sleep(1.0)
        final = api.wait(long_id, timeout_s=1800, poll_s=1.0)
        stop.set()
        watcher.join(timeout=5)
        republished = metric_total(stack.consumer_metrics_url, "tts_gateway_jobs_republished_total")

    running = [sample for sample in samples if sample[1] == "running"]
    longest_pause = 0.0
    since, done = (running[0][0], running[0][2]) if running else (0.0, 0)
    for at, _, sentences_done in running:
        if sentences_done != done:
            longest_pause = max(longest_pause, at - since)
            since, done = at, sentences_done
    print(f"flood: {flood} medium jobs of 8 sentences, one a second; watchdog threshold {args.stalled_after:g} s")
    print(f"long job: {args.long_sentences} sentences, {final['timings'].get('latency_s')} s from submit to done")
    print(f"longest pause without a new sentence while running s = {longest_pause:.1f}")
    print(f"long job = {final['status']}  attempt = {final['attempt']}  republished = {republished:.0f}")
    return 0 if final["status"] == "succeeded" and final["attempt"] == 1 and republished == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
