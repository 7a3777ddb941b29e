"""The stack's own CPU per one-sentence job, without synthesis: what the gateway, the event
consumer, the broker and Postgres cost around the agents.

`bench/isolation.py`'s `burst efficiency` divides the service's rate by what synthesis alone
allows, so the stack's CPU per job is what it gives up besides contention. On a shared 2-core
machine whose speed drifts by 20 % between runs the burst figure moves more than any change to
that overhead; this bench measures the overhead alone, side by side:

- a stack with no agents on Postgres; 20 client threads submit `--jobs` one-sentence jobs
  (the burst's texts), then a stand-in agent in this process answers every job with what an agent
  sends for one sentence (`started`, a segment of 1.5 s of 22,050 Hz PCM, `completed`), half of
  the jobs as one message (this version's agents) and half as one message per event (agents
  before it), in alternating order; the jobs' end is read from Postgres, not over the API;
- each round starts two stacks in turn, with `DATABASE_PREPARED_STATEMENTS` on and off.

CPU is each process's (and the broker's, the Postgres server's) user + system time over the
phase, divided by the jobs; the pooled figure of each is the median over rounds. It prints:

    submit cpu ms/job (prepared on): web W, postgres P, broker B, consumer C, total T
    events cpu ms/job (1 message, prepared on): consumer C, broker B, postgres P, web W, total T
    ...
    one message vs three events cpu ratio = R      (the events phase's totals, prepared on)
    prepared vs client-side binding cpu ratio = S  (submit + one-message events, on/off)

Run: .venv/bin/python bench/stack_cpu.py [--jobs 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import pulsar

from bench.cpu import command_cpu_s, stack_cpu_s
from bench.isolation import BURST_TEXTS
from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import Stack, StackConfig
from tts_contracts import CompletedEvent, JobEvent, SegmentEvent, StartedEvent, Topics, encode_events
from tts_runtime import pulsar_client

DATABASE = "tts_bench_stack_cpu"
SAMPLE_RATE = 22050
SEGMENT_SECONDS = 1.5  # about what one burst sentence is
CLIENTS = 20
FORMS = ("1 message", "3 messages")
PARTS = ("web", "consumer", "broker", "postgres")


# 16-bit PCM of silence: the size of real speech, not its content (nothing on the path looks at it).
PCM = bytes(2 * int(SEGMENT_SECONDS * SAMPLE_RATE))


def one_sentence_run(job: dict) -> list[JobEvent]:
    """What an agent sends for a job of one sentence, delivered once."""
    envelope = {"job_id": job["id"], "attempt": 1, "agent_id": "stand-in"}
    now = time.time()
    return [
        StartedEvent(
            **envelope, seq=0, sent_at=now, sentence_count=1, sample_rate=SAMPLE_RATE, voice=job.get("voice") or ""
        ),
        SegmentEvent(
            **envelope, seq=1, sent_at=now, first_sentence=0, sentence_count=1, sample_rate=SAMPLE_RATE, pcm=PCM
        ),
        CompletedEvent(
            **envelope,
            seq=2,
            sent_at=now,
            sentence_count=1,
            segment_count=1,
            sample_rate=SAMPLE_RATE,
            audio_seconds=SEGMENT_SECONDS,
        ),
    ]


def cpu_now(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of the parts this bench weighs (this process's own clients excluded)."""
    usage = stack_cpu_s(stack)
    return {
        "web": usage["web"],
        "consumer": usage["consumer"],
        "broker": command_cpu_s("pulsar-lite"),
        "postgres": usage["postgres (all processes)"],
    }


def per_job_ms(before: dict[str, float], after: dict[str, float], jobs: int) -> dict[str, float]:
    return {part: 1000 * (after[part] - before[part]) / jobs for part in PARTS}


def all_succeeded(database_url: str, job_ids: list[str]) -> bool:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM gateway_synthesisjob WHERE status = 'succeeded' AND id = ANY(%s::uuid[])",
            (job_ids,),
        ).fetchone()
    return row is not None and int(row[0]) == len(job_ids)


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done after {timeout_s}s")
        time.sleep(0.2)


def submit_all(stack: Stack, count: int) -> list[dict]:
    jobs: list[dict] = []
    lock = threading.Lock()
    gate = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        api = ApiClient(stack.gateway_url, stack.api_token)
        gate.wait()
        for n in range(index, count, CLIENTS):
            job = api.submit(BURST_TEXTS[n % len(BURST_TEXTS)])
            with lock:
                jobs.append(job)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(jobs) != count:
        raise RuntimeError(f"{count - len(jobs)} submits failed")
    return jobs


def answer(producer: pulsar.Producer, jobs: list[dict], form: str) -> None:
    """Send every job's events as the stand-in agent, in `form`, each send confirmed as an agent does."""
    for job in jobs:
        events = one_sentence_run(job)
        groups = [events] if form == FORMS[0] else [[event] for event in events]
        for group in groups:
            producer.send(encode_events(group), partition_key=job["id"])


def run_stack(prepared: bool, args: argparse.Namespace, *, forms: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """One stack: the submit phase, then the events phases in `forms` order; CPU ms per job of each."""
    database_url = recreate_database(DATABASE)
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_PREPARED_STATEMENTS": "true" if prepared else "false",
        "TTS_THROTTLE_SUBMIT": "",
        "TTS_THROTTLE_READ": "",
        "TTS_QUOTA_MAX_ACTIVE_JOBS": "100000",
    }
    var_dir = Path(tempfile.mkdtemp(prefix="tts-bench-stack-cpu-"))
    config = StackConfig(
        var_dir=var_dir, web_port=free_port(), consumer_metrics_port=free_port(), agents=(), extra_env=env
    )
    results: dict[str, dict[str, float]] = {}
    with Stack(config) as stack:
        submit_all(stack, 20)  # warm-up: connections, first imports, prepared statements
        time.sleep(1.0)
        before = cpu_now(stack)
        jobs = submit_all(stack, args.jobs)
        time.sleep(1.0)  # the outbox's publishes after commit, and the consumer's idle polls, settle
        results["submit"] = per_job_ms(before, cpu_now(stack), len(jobs))

        assert stack.broker is not None
        client = pulsar_client(stack.broker.url)
        try:
            producer = client.create_producer(Topics().events_topic, chunking_enabled=True, batching_enabled=False)
            half = len(jobs) // 2
            for form, share in zip(forms, (jobs[:half], jobs[half:]), strict=True):
                ids = [job["id"] for job in share]
                before = cpu_now(stack)
                answer(producer, share, form)
                wait_until(partial(all_succeeded, database_url, ids), timeout_s=120, what=form)
                time.sleep(0.5)  # the last after-commit publishes
                results[form] = per_job_ms(before, cpu_now(stack), len(share))
        finally:
            client.close()
    return results


def describe(name: str, figures: dict[str, float]) -> str:
    parts = ", ".join(f"{part} {figures[part]:.2f}" for part in PARTS)
    return f"{name}: {parts}, total {sum(figures.values()):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted per stack (half answered each way)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not postgres_available():
        print("Postgres is not reachable on 127.0.0.1:5432: this bench measures the Postgres stack", file=sys.stderr)
        return 2
    print(
        f"stack cpu benchmark: {args.jobs} one-sentence jobs per stack from {CLIENTS} clients, no agents; "
        f"a stand-in agent answers each with {SEGMENT_SECONDS} s of audio; {args.rounds} rounds",
        flush=True,
    )
    rounds: dict[str, list[dict[str, float]]] = {}
    for index in range(args.rounds):
        order = (True, False) if index % 2 == 0 else (False, True)
        forms = FORMS if index % 2 == 0 else FORMS[::-1]
        for prepared in order:
            label = "prepared on" if prepared else "prepared off"
            for phase, figures in run_stack(prepared, args, forms=forms).items():
                key = f"{phase}, {label}"
                rounds.setdefault(key, []).append(figures)
                print(f"[round {index + 1}] {describe(key, figures)}", flush=True)

    pooled = {
        key: {part: statistics.median(r[part] for r in values) for part in PARTS} for key, values in rounds.items()
    }
    print(f"\n=== cpu ms per job, median of {args.rounds} rounds ===")
    for key, figures in pooled.items():
        print(describe(key, figures))

    def total(key: str) -> float:
        return sum(pooled[key].values())

    one, three = total("1 message, prepared on"), total("3 messages, prepared on")
    print(f"one message vs three events cpu ratio = {one / three:.2f}")
    on = total("submit, prepared on") + total("1 message, prepared on")
    off = total("submit, prepared off") + total("1 message, prepared off")
    print(f"prepared vs client-side binding cpu ratio = {on / off:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
