"""Every accepted job ends exactly once with the right audio, while processes crash around it.

Runs the real service as processes: a throwaway PostgreSQL and Redis of its own (so it can stop
them), the embedded broker, the gateway, the event consumer and three agents. Ten client threads
submit a mix of short, medium and long jobs (each with a seed, so its audio is reproducible) while
a schedule injects faults:

- SIGKILL an agent every ~20 s, then restart it;
- SIGSTOP one agent for 60 s (it holds a prefetched message and a claimed job), then SIGCONT;
- SIGKILL the broker once and restart it on the same port and data;
- SIGKILL the event consumer once, mid-delivery (stopped for a second first), and restart it as
  `make run` does (the embedded broker first);
- stop Redis for 20 s; restart PostgreSQL once (every connection cut);
- cancel 10 running jobs; steal a few job messages off the agents' subscription (the broker
  "loses" confirmed messages, which the gateway must notice and re-send).

Clients retry a submission that failed in transit with the same `Idempotency-Key`, as a careful
client does. Then every job is checked:

- ended: none left queued or running;
- exactly once: one completion in the consumer's log, and audio with no sentence twice;
- right audio: each succeeded WAV is sample-identical to the same text and seed synthesized
  afresh in a clean process, the way an agent synthesizes it;
- a true failure reason (a known code) where one failed.

    .venv/bin/python bench/chaos.py            # 300 jobs, about 15-25 minutes on 2 cores
    .venv/bin/python bench/chaos.py --quick    # about 60 jobs, under 5 minutes

The last line reads: `jobs N  ended N  lost 0  doubled 0  wrong_audio 0  failed 0  cancelled C`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.broker import free_port
from devstack.client import FINAL_STATUSES, ApiClient, ApiError
from devstack.stack import AgentSpec, Stack, StackConfig
from devstack.throwaway import ThrowawayPostgres, ThrowawayRedis

logger = logging.getLogger("chaos")

SHORT_TEXTS = [
    "Your order has shipped.",
    "The meeting starts at ten thirty. Please be on time.",
    "Turn left at the next intersection.",
    "Thanks for calling. How can I help you today?",
    "Battery low. Please connect the charger.",
    "Welcome back! You have three new messages.",
    "The train to Boston departs from platform six.",
    "Your appointment is confirmed for Tuesday.",
]
SENTENCES = [
    "The history of the city began with a small settlement on the river, where traders met every spring.",
    "Over the following centuries the town grew into a busy port with warehouses, markets and shipyards.",
    "Engineers built bridges, schools opened in every district, and the first electric lights arrived.",
    "Today visitors walk along the old harbor, where museums tell the story of those early merchants.",
    "Each summer a festival fills the streets with music, food stalls and boats decorated with flags.",
    "Scientists at the university study the river's ecology and the birds that nest along its banks.",
]
KNOWN_FAILURE_CODES = {
    "invalid_input",
    "synthesis_error",
    "time_limit",
    "agent_crashed_repeatedly",
    "publish_failed",
    "storage_full",
    "stalled",
}
AGENTS = tuple(AgentSpec(classes=("short", "medium", "long"), name=f"agent-{index}") for index in range(3))


def paragraph(index: int, chars: int) -> str:
    parts: list[str] = []
    while sum(len(part) + 1 for part in parts) < chars:
        parts.append(SENTENCES[(index + len(parts)) % len(SENTENCES)])
    return " ".join(parts)


@dataclass(frozen=True)
class Plan:
    jobs: int
    clients: int
    submit_seconds: float
    kill_agent_every_s: float
    sigstop_s: float
    redis_down_s: float
    cancels: int
    steals: int
    timeout_s: float


FULL = Plan(
    jobs=300, clients=10, submit_seconds=90, kill_agent_every_s=20, sigstop_s=60, redis_down_s=20, cancels=10,
    steals=4, timeout_s=2400,
)  # fmt: skip
# Submissions span the one-time faults (the last, PostgreSQL's restart, comes at 46 s), so each of
# them hits jobs in flight: with 20 s, a faster synthesis once ended the run before Redis and
# PostgreSQL went down.
QUICK = Plan(
    jobs=60, clients=10, submit_seconds=50, kill_agent_every_s=20, sigstop_s=25, redis_down_s=10, cancels=3,
    steals=2, timeout_s=420,
)  # fmt: skip


def job_mix(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Mostly short texts, some medium, a few long; a small pool so some sentences repeat (cache)."""
    bodies = []
    for index in range(count):
        roll = index % 20
        if roll == 19:
            text = paragraph(index, 4100)  # long
        elif roll in (4, 9, 14):
            text = paragraph(index, 600)  # medium
        else:
            text = SHORT_TEXTS[index % len(SHORT_TEXTS)]
        bodies.append({"text": text, "params": {"seed": rng.choice([1, 2, 3])}})
    rng.shuffle(bodies)
    return bodies


@dataclass
class Ledger:
    """What the clients were promised (a 202 and a job id) and what they saw go wrong."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    submit_errors: Counter[str] = field(default_factory=Counter)
    cancelled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit_with_retries(api: ApiClient, body: dict[str, Any], ledger: Ledger, *, deadline: float) -> None:
    key = str(uuid.uuid4())
    while time.monotonic() < deadline:
        try:
            status, raw, _ = api.request("POST", "/api/v1/jobs", body, headers={"Idempotency-Key": key})
        except OSError as error:  # connection refused or reset while the gateway or database restarts
            status, raw = 0, str(error).encode()
        if status in (200, 201, 202):
            job = json.loads(raw)
            with ledger.lock:
                ledger.accepted[job["id"]] = body
            return
        with ledger.lock:
            ledger.submit_errors[str(status)] += 1
        if 400 <= status < 500 and status not in (408, 409, 425, 429):
            raise RuntimeError(f"submission refused with {status}: {raw[:300]!r}")
        time.sleep(0.5)
    raise TimeoutError("a submission was never accepted")


class Faults:
    """The fault schedule, run on its own thread against the running stack."""

    def __init__(self, stack: Stack, postgres: ThrowawayPostgres, redis: ThrowawayRedis, plan: Plan) -> None:
        self.stack, self.postgres, self.redis, self.plan = stack, postgres, redis, plan
        self.log: list[str] = []
        self.stop = threading.Event()
        self.scheduled_done = threading.Event()  # every one-time fault has happened
        self._stopped_agent: str | None = None

    def note(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.log.append(line)
        print(line, flush=True)

    def run(self, started: float) -> None:
        plan = self.plan
        once = [
            (8.0, self.sigstop_agent),
            (14.0, self.kill_broker),
            (24.0, self.kill_consumer),
            (34.0, self.stop_redis),
            (34.0 + plan.redis_down_s, self.start_redis),
            (46.0, self.restart_postgres),
            (8.0 + plan.sigstop_s, self.sigcont_agent),
        ]
        next_kill = plan.kill_agent_every_s
        victim = 0
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            while once and once[0][0] <= elapsed:
                once.pop(0)[1]()
                once.sort(key=lambda item: item[0])
            if not once:
                self.scheduled_done.set()
            if elapsed >= next_kill:
                victim = self.kill_agent(victim)
                next_kill += plan.kill_agent_every_s
            self.stop.wait(0.5)
        if self._stopped_agent:
            self.sigcont_agent()
        if not self.redis_running:
            self.start_redis()

    redis_running = True

    def _agent_names(self) -> list[str]:
        return [spec.label for spec in AGENTS]

    def kill_agent(self, victim: int) -> int:
        names = [name for name in self._agent_names() if name != self._stopped_agent]
        name = names[victim % len(names)]
        process = self.stack.processes.get(name)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.note(f"SIGKILL {name}; restarting it")
        self.stack.start_agent(next(spec for spec in AGENTS if spec.label == name))
        return victim + 1

    def sigstop_agent(self) -> None:
        name = self._agent_names()[-1]
        self.stack.processes[name].send_signal(signal.SIGSTOP)
        self._stopped_agent = name
        self.note(f"SIGSTOP {name} for {self.plan.sigstop_s:.0f} s")

    def sigcont_agent(self) -> None:
        if self._stopped_agent is None:
            return
        process = self.stack.processes.get(self._stopped_agent)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
        self.note(f"SIGCONT {self._stopped_agent}")
        self._stopped_agent = None

    def kill_broker(self) -> None:
        assert self.stack.broker is not None
        self.stack.broker.kill()
        self.note("SIGKILL broker")
        time.sleep(2.0)
        self.stack.broker.start()
        self.note("broker restarted")

    def kill_consumer(self) -> None:
        process = self.stack.processes["consumer"]
        # Stopped first for a second, so that it dies with events unread in its socket: the
        # broker sees a reset connection, the case pulsar-lite mishandles (devstack Stack.respawn).
        process.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        process.kill()
        process.wait()
        self.note("SIGSTOP then SIGKILL event consumer; restarting it")
        self.stack.respawn("consumer")  # as `make run` does: with the embedded broker restarted first

    def stop_redis(self) -> None:
        self.redis.stop()
        self.redis_running = False
        self.note(f"Redis stopped for {self.plan.redis_down_s:.0f} s")

    def start_redis(self) -> None:
        self.redis.start()
        self.redis_running = True
        self.note("Redis started")

    def restart_postgres(self) -> None:
        self.postgres.restart()
        self.note("PostgreSQL restarted (fast: every connection cut)")


def steal_job_messages(pulsar_url: str, topic: str, count: int) -> int:
    """Join the agents' shared subscription, take `count` messages and ack them unprocessed: to
    the service this is a broker that lost confirmed messages."""
    import pulsar

    from tts_contracts import AGENT_SUBSCRIPTION

    client = pulsar.Client(pulsar_url, logger=logging.getLogger("pulsar"), operation_timeout_seconds=10)
    stolen = 0
    try:
        consumer = client.subscribe(
            topic, AGENT_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Shared, receiver_queue_size=1
        )
        deadline = time.monotonic() + 20
        while stolen < count and time.monotonic() < deadline:
            try:
                message = consumer.receive(timeout_millis=500)
            except pulsar.Timeout:
                continue
            consumer.acknowledge(message)
            stolen += 1
        consumer.close()
    finally:
        client.close()
    return stolen


def cancel_running(api: ApiClient, ledger: Ledger, *, wanted: int, deadline: float) -> None:
    """Cancel `wanted` jobs while an agent is working on them, longest first."""
    while len(ledger.cancelled) < wanted and time.monotonic() < deadline:
        status, raw, _ = api.request("GET", "/api/v1/jobs?status=running&page_size=100")
        running = json.loads(raw).get("results", []) if status == 200 else []
        running.sort(key=lambda job: -(job.get("sentence_count") or 0))
        for job in running:
            if len(ledger.cancelled) >= wanted or job["id"] in ledger.cancelled:
                continue
            status, _, _ = api.request("POST", f"/api/v1/jobs/{job['id']}/cancel")
            if status == 200:
                ledger.cancelled.add(job["id"])
        # A job shows as running from its first sentence on, and with the sentence cache warm a
        # long one may finish within a second: a 1 s poll once saw none in a whole quick run.
        time.sleep(0.2)


def pcm_of_wav(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.readframes(wav.getnframes())


def reference_digests(bodies: list[dict[str, Any]], *, threads: int) -> dict[str, str]:
    """SHA-256 of the PCM of each (text, params), synthesized in a clean process by the agent's
    own synthesis path with an empty cache."""
    request = json.dumps({"bodies": bodies, "threads": threads})
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "chaos_reference.py")],
        input=request,
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"reference synthesis failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout)


def body_key(body: dict[str, Any]) -> str:
    """The same key bench/chaos_reference.py gives a body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def completions_in_log(log_path: Path) -> Counter[str]:
    """How many times the consumer marked each job succeeded (across its restarts)."""
    pattern = re.compile(r"job ([0-9a-f-]{36}) succeeded")
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return Counter(pattern.findall(text))


def run(plan: Plan, *, seed: int) -> int:
    rng = random.Random(seed)
    bodies = job_mix(plan.jobs, rng)
    postgres = ThrowawayPostgres().start()
    redis = ThrowawayRedis().start()
    var_dir = Path(tempfile.mkdtemp(prefix="tts-chaos-"))
    stack = Stack(
        StackConfig(
            var_dir=var_dir,
            web_port=free_port(),
            consumer_metrics_port=free_port(),
            agents=AGENTS,
            web_workers=2,
            extra_env={
                # The service's own settings, also under pytest (whose environment names the test
                # settings: a stalled job failed there after three re-sends, not TTS_STALLED_JOB_FAIL_AFTER_S).
                "DJANGO_SETTINGS_MODULE": "tts_project.settings.base",
                # One user submits every job: the faults are under test here, not the limits.
                "TTS_THROTTLE_SUBMIT": "100000/min",
                # The report reads every job and WAV back within seconds (300 jobs: past 1200/min).
                "TTS_THROTTLE_READ": "100000/min",
                "TTS_QUOTA_MAX_ACTIVE_JOBS": "10000",
                "DATABASE_URL": postgres.url,
                "REDIS_URL": redis.url,
                "TTS_AGENT_THREADS": "1",
                "TTS_STALLED_JOB_AFTER_S": "15",
                # Messages stolen or lost with the broker leave jobs queued with no holder: re-send
                # them within the run (production waits longer, a backlog is not a loss).
                "TTS_QUEUED_JOB_RESEND_AFTER_S": "20",
                "TTS_HEARTBEAT_INTERVAL_S": "3",
                "TTS_AGENT_METRICS_PORT": "0",
            },
        )
    )
    ledger = Ledger()
    faults = Faults(stack, postgres, redis, plan)
    try:
        stack.start()
        api = ApiClient(stack.gateway_url, stack.api_token, timeout_s=30)
        print(f"stack up in {var_dir}; {plan.jobs} jobs from {plan.clients} clients", flush=True)
        started = time.monotonic()
        fault_thread = threading.Thread(target=faults.run, args=(started,), daemon=True)
        fault_thread.start()

        submit_deadline = started + plan.submit_seconds + 300
        queue = list(enumerate(bodies))
        queue_lock = threading.Lock()

        def client() -> None:
            while True:
                with queue_lock:
                    if not queue:
                        return
                    index, body = queue.pop(0)
                # Pace submissions over submit_seconds so faults hit submits too.
                time.sleep(max(0.0, started + index * plan.submit_seconds / plan.jobs - time.monotonic()))
                submit_with_retries(api, body, ledger, deadline=submit_deadline)

        clients = [threading.Thread(target=client, daemon=True) for _ in range(plan.clients)]
        for thread in clients:
            thread.start()
        time.sleep(4)
        stolen = steal_job_messages(stack.env["PULSAR_URL"], _short_topic(), plan.steals)
        faults.note(f"stole {stolen} job messages off the short topic")
        cancel_running(api, ledger, wanted=plan.cancels, deadline=started + plan.submit_seconds + 120)
        for thread in clients:
            thread.join()
        faults.note(f"{len(ledger.accepted)} jobs accepted; submit retries by status: {dict(ledger.submit_errors)}")

        # Jobs that ended before a fault was due would leave it untested: the schedule runs out
        # first, then the jobs are read (a fault after they ended must not have changed them).
        if not faults.scheduled_done.wait(timeout=max(0.0, started + plan.timeout_s - time.monotonic())):
            faults.note("the fault schedule did not finish within the run's time limit")
        final = wait_all(api, ledger, deadline=started + plan.timeout_s)
        faults.stop.set()
        fault_thread.join(timeout=30)
        elapsed = time.monotonic() - started
        return report(api, stack, ledger, final, elapsed=elapsed)
    finally:
        faults.stop.set()
        stack.stop()
        redis.stop()
        postgres.stop()


def _short_topic() -> str:
    from tts_contracts import Topics

    return Topics().job_topic("short")


def wait_all(api: ApiClient, ledger: Ledger, *, deadline: float) -> dict[str, dict[str, Any]]:
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for job_id in [job_id for job_id in ledger.accepted if job_id not in final]:
            try:
                job = api.job(job_id)
            except Exception:  # the gateway may be restarting a worker: ask again next round
                continue
            if job["status"] in FINAL_STATUSES:
                final[job_id] = job
        if len(final) == len(ledger.accepted):
            break
        print(f"  {len(final)}/{len(ledger.accepted)} jobs final", flush=True)
        time.sleep(5)
    return final


def report(api: ApiClient, stack: Stack, ledger: Ledger, final: dict[str, dict[str, Any]], *, elapsed: float) -> int:
    completions = completions_in_log(stack.log_dir / "consumer.log")
    succeeded = [job_id for job_id, job in final.items() if job["status"] == "succeeded"]
    failed = {job_id: job for job_id, job in final.items() if job["status"] == "failed"}
    cancelled = [job_id for job_id, job in final.items() if job["status"] == "cancelled"]
    lost = [job_id for job_id in ledger.accepted if job_id not in final]
    doubled = [job_id for job_id, count in completions.items() if count > 1 and job_id in ledger.accepted]
    unknown_reasons = [job_id for job_id, job in failed.items() if job.get("error_code") not in KNOWN_FAILURE_CODES]

    unique = {body_key(ledger.accepted[job_id]): ledger.accepted[job_id] for job_id in succeeded}
    print(f"synthesizing {len(unique)} distinct texts afresh for the audio check...", flush=True)
    expected = reference_digests(list(unique.values()), threads=1)
    wrong = []
    for job_id in succeeded:
        digest = hashlib.sha256(pcm_of_wav(audio_with_retries(api, job_id))).hexdigest()
        if digest != expected[body_key(ledger.accepted[job_id])]:
            wrong.append(job_id)

    for title, ids in (("lost", lost), ("doubled", doubled), ("wrong audio", wrong), ("bad reason", unknown_reasons)):
        for job_id in ids[:10]:
            print(f"  {title}: {job_id} {final.get(job_id, {}).get('status', 'not final')}", flush=True)
    for job_id, job in list(failed.items())[:10]:
        print(f"  failed: {job_id} {job.get('error_code')}: {job.get('error')}", flush=True)
    for job_id in (lost + [job_id for job_id, job in failed.items() if job.get("error_code") == "stalled"])[:3]:
        print(job_story(api, stack.log_dir, job_id), flush=True)
    print(f"elapsed {elapsed:.0f} s; cancelled on request {len(ledger.cancelled)}", flush=True)
    print(
        f"jobs {len(ledger.accepted)}  ended {len(final)}  lost {len(lost)}  doubled {len(doubled)}  "
        f"wrong_audio {len(wrong)}  failed {len(failed)}  cancelled {len(cancelled)}",
        flush=True,
    )
    return 0 if not (lost or doubled or wrong or unknown_reasons) else 1


def audio_with_retries(api: ApiClient, job_id: str, *, within_s: float = 120.0) -> bytes:
    """A job's WAV, asked again while the gateway answers 503 or 429 or the connection fails, as a
    careful client does: the run's last fault (a Postgres restart) may come just before the report."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return api.audio(job_id)
        except (ApiError, OSError) as error:
            if time.monotonic() > deadline or (isinstance(error, ApiError) and error.status not in (429, 503)):
                raise
            print(f"  audio of {job_id}: {error}; asking again", flush=True)
            time.sleep(1.0)


def job_story(api: ApiClient, log_dir: Path, job_id: str, *, lines: int = 60) -> str:
    """What went wrong with one job, for the run's output (CI keeps nothing else): its state as
    the API shows it and the last log lines of every process that name it, in time order."""
    try:
        state = {key: value for key, value in api.job(job_id).items() if not key.endswith("_url")}
    except Exception as error:  # the report must not fail on a diagnostic
        state = {"error": repr(error)}
    named: list[str] = []
    for log_path in sorted(log_dir.glob("*.log")):
        for line in log_path.read_text(errors="replace").splitlines():
            if job_id in line:
                named.append(f"{log_path.stem}: {line[:400]}")
    # Lines start with their timestamp after the process name; sort on it, not on the name.
    named.sort(key=lambda line: line.split(": ", 1)[1][:23])
    return "\n".join([f"  story of {job_id}: {json.dumps(state, default=str)[:1500]}", *named[-lines:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 60 jobs, under 5 minutes")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = QUICK if args.quick else FULL
    if args.jobs:
        plan = Plan(**{**plan.__dict__, "jobs": args.jobs})
    return run(plan, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
