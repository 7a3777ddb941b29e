"""Short jobs must not wait behind long ones, and no core may idle while work waits: measured end to end.

Starts the real stack itself (pulsar-lite broker, Postgres or SQLite, Redis, gunicorn, the
event consumer and the agents of `devstack.stack.DEFAULT_AGENTS`: by default two agents that
each serve every class, short first, preempting between chunks of audio), submits through the
HTTP API, and measures a short job's POST-to-audio-ready latency at the client: from just before
its POST to the `done` event on the job's server-sent event stream, opened right after the POST
(the gateway sends it once the WAV is stored and committed). It also prints the same jobs from
their own timestamps, queued_at to finished_at; finished_at is the agent's send time of
`completed`, so that figure leaves out the broker, the event consumer and the WAV (up to 73 ms
of a short job under the long flood here, a p50 of 16 ms). The sentence cache is off, so
repeats don't flatter.

Phases, each on a fresh stack, the same short jobs at the same steady rate:
  (a) idle: short jobs alone;
  (b) under the long flood: short jobs while >= 10 long jobs (>= 5,000 characters each) are
      queued and running, default (work-conserving) agents; `--agents reserved` measures the
      old layout instead (one agent for short, one for medium,long);
  (c) FIFO baseline: as (b) with TTS_SCHEDULING=fifo (one topic, arrival order);
  burst: 100 one-sentence jobs submitted at once from 20 client threads, default agents;
      then each job's WAV read once (its time and CPU printed apart); three rounds, each on a
      fresh stack with the bound measured right before and after it, and the round of median
      efficiency printed as the figure (every round's beside it);
  piper: the same burst on Piper's own HTTP server (piper-tts 1.8, the same voice, in a
      virtualenv of its own: bench/piper_server.py), once before the service's burst and once
      after; the issue set `burst efficiency` >= 0.8 so that the service beats this server, and
      `burst vs piper` measures that directly.
Phases (a), (b) and (c) run in two rounds by default, the second in reverse order (a b c c b a),
so that a steady drift of this shared machine's speed weighs every phase alike: in one run of a
single round, the same long work took the agents 12 % more CPU in (b) than in (c), run minutes
later, and one burst job alone took 0.140 s before the burst and 0.129 s after it. It prints
p50/p95 of each phase (all rounds' jobs pooled, and each round's), `b/a` and `c/a` at p95 of the
pooled latencies with a bootstrap interval over the jobs (bench/spread.py), the long jobs'
makespan (first long submit to last long job done) in (b) and (c), its mean over the rounds, and
their ratio, and the burst throughput against the bound
(cores / pure synthesis time of one such job, measured in this run) and against the co-run
ceiling (as many bare synthesis loops as agents, side by side, no service around them).

    .venv/bin/python bench/isolation.py            # full run, about 20-30 minutes on 2 cores
    .venv/bin/python bench/isolation.py --rounds 1 # each phase once, in order a b c
    .venv/bin/python bench/isolation.py --quick    # a short look (fewer, shorter jobs)
    .venv/bin/python bench/isolation.py --phases burst --conv-engine onednn   # the burst on oneDNN
    .venv/bin/python bench/isolation.py --phases burst,piper   # the burst, and Piper's server on it
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import machine_ticks, stack_cpu_s, steal_share
from bench.piper_server import PiperBurst, PiperUnavailable, piper_bursts
from bench.spread import percentile, ratio_interval
from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import DEFAULT_AGENTS, AgentSpec, Stack, StackConfig

if TYPE_CHECKING:  # vits (and torch) load in the functions that synthesize, not at import
    from vits.model.winograd import ConvEngine

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


# The old layout, capacity reserved for short jobs: measured with `--agents reserved`.
RESERVED_AGENTS = (AgentSpec(classes=("short",)), AgentSpec(classes=("medium", "long")))

# One sentence each: the burst's jobs.
BURST_TEXTS = [text for text in SHORT_TEXTS if text.count(".") + text.count("?") + text.count("!") == 1]


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


@dataclass
class PhaseResult:
    name: str
    # POST to the SSE `done` event at the client: the audio is stored and the client knows it.
    short_latencies: list[float] = field(default_factory=list)
    # From the job's own timestamps: queued_at to finished_at, the agent's send time of `completed`
    # (before the broker, the consumer and the WAV), as the bench measured before it followed SSE.
    short_job_latencies: list[float] = field(default_factory=list)
    long_latencies: list[float] = field(default_factory=list)
    long_makespan_s: float = float("nan")
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    # CPU seconds from the first submit until every job was final: the agents', and the stack's.
    agents_cpu_s: float = float("nan")
    stack_cpu_s: float = float("nan")
    steal: float = 0.0  # the machine's stolen share of time meanwhile (bench.cpu.machine_ticks)


def pooled(name: str, rounds: Sequence[PhaseResult]) -> PhaseResult:
    """One phase over its rounds: every latency, the mean makespan, the CPU and failures summed."""
    if len(rounds) == 1:
        return rounds[0]
    makespans = [result.long_makespan_s for result in rounds]
    return PhaseResult(
        name,
        short_latencies=[latency for result in rounds for latency in result.short_latencies],
        short_job_latencies=[latency for result in rounds for latency in result.short_job_latencies],
        long_latencies=[latency for result in rounds for latency in result.long_latencies],
        long_makespan_s=statistics.mean(makespans),  # nan if a round had unfinished long jobs
        failures=[failure for result in rounds for failure in result.failures],
        wall_s=sum(result.wall_s for result in rounds),
        agents_cpu_s=sum(result.agents_cpu_s for result in rounds),
        stack_cpu_s=sum(result.stack_cpu_s for result in rounds),
    )


def phase_ratios(phases: dict[str, PhaseResult]) -> dict[str, float]:
    """The ratios the bench reports, by name, of the phases given (pooled or one round's)."""
    ratios: dict[str, float] = {}
    if "a" in phases:
        base = percentile(phases["a"].short_latencies, 0.95)
        for key in ("b", "c"):
            if key in phases:
                ratios[f"{key}/a"] = percentile(phases[key].short_latencies, 0.95) / base
    if "b" in phases and "c" in phases:
        ratios["long makespan b/c"] = phases["b"].long_makespan_s / phases["c"].long_makespan_s
        # Where a makespan ratio above 1 comes from: the agents doing more (or slower) work, or not
        # getting the cores.
        ratios["agents cpu b/c"] = phases["b"].agents_cpu_s / phases["c"].agents_cpu_s
    return ratios


def latency_of(job: dict) -> float:
    return parse_time(job["finished_at"]) - parse_time(job["queued_at"])


def _listed(api: ApiClient, query: str) -> list[dict]:
    jobs: list[dict] = []
    page = 1
    while True:
        listing = api.json("GET", f"/api/v1/jobs?page_size=100&page={page}{query}")
        jobs += listing["results"]
        if not listing.get("next"):
            return jobs
        page += 1


def wait_all(api: ApiClient, job_ids: Sequence[str], timeout_s: float, poll_s: float = 1.0) -> list[dict]:
    """Wait until no job of `job_ids` is queued or running, then read them all once.

    Polls the list of pending jobs only (one request per 100 of them), not every job: the
    gateway and its database serve the benchmark on the cores it measures. Latencies come from
    the jobs' own timestamps, so the poll interval does not change them.
    """
    wanted = set(job_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = {job["id"] for status in ("queued", "running") for job in _listed(api, f"&status={status}")}
        left = len(pending & wanted)
        if not left:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} jobs not final after {timeout_s}s")
        time.sleep(poll_s)
    final = {job["id"]: job for job in _listed(api, "") if job["id"] in wanted}
    return [final[job_id] for job_id in job_ids]


def pending_count(api: ApiClient) -> int:
    """Jobs queued or running, from the list's `count` (one job serialized per request)."""
    counts = [api.json("GET", f"/api/v1/jobs?page_size=1&status={status}")["count"] for status in ("queued", "running")]
    return sum(counts)


def wait_idle(api: ApiClient, timeout_s: float, poll_s: float = 1.0) -> None:
    """Wait until no job at all is queued or running: for a stack that runs one batch of jobs.

    Two counting requests per poll: the gateway's CPU during a burst is then the service's own
    (submits, results), not the benchmark reading 100 pending jobs back every second, which
    cost the web process about as much CPU as the submits themselves (measured: 58 ms per job).
    """
    deadline = time.monotonic() + timeout_s
    while (left := pending_count(api)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} jobs not final after {timeout_s}s")
        time.sleep(poll_s)


def start_stack(name: str, args: argparse.Namespace, *, scheduling: str, agents: Sequence[AgentSpec]) -> Stack:
    env = {"TTS_SCHEDULING": scheduling, "TTS_CACHE_ENABLED": "0", "TTS_AGENT_THREADS": str(args.agent_threads)}
    env["TTS_VITS_CONV_ENGINE"] = args.conv_engine
    # One demo user submits everything, phase after phase, and the rate counters live in Redis
    # across stacks: the per-user limits would measure the limits, not the service.
    env |= {"TTS_THROTTLE_SUBMIT": "", "TTS_QUOTA_MAX_ACTIVE_JOBS": "100000"}
    if args.background_nice is not None:
        env["TTS_AGENT_BACKGROUND_NICE"] = str(args.background_nice)
    if postgres_available():
        env["DATABASE_URL"] = recreate_database(args.database)
    var_dir = Path(tempfile.mkdtemp(prefix=f"tts-bench-{name}-"))
    print(f"[{name}] starting the stack in {var_dir} (scheduling={scheduling})", flush=True)
    return Stack(
        StackConfig(
            var_dir=var_dir, web_port=free_port(), consumer_metrics_port=free_port(), agents=agents, extra_env=env
        )
    )


def warm_up(api: ApiClient, agents: int) -> None:
    """The first synthesis of each agent pays lazy initialisation: give every agent a job of each size."""
    ids = [api.submit("Warming up.")["id"] for _ in range(agents)] + [
        api.submit(long_text(i, 500))["id"] for i in range(agents)
    ]
    wait_all(api, ids, 300)


class ShortJobFollower(threading.Thread):
    """Follows one job's server-sent events from just after its POST: the latency a client sees."""

    def __init__(self, api: ApiClient, job_id: str, posted_at: float, timeout_s: float) -> None:
        super().__init__(daemon=True, name=f"follow-{job_id}")
        self.api, self.job_id, self.posted_at, self.timeout_s = api, job_id, posted_at, timeout_s
        self.latency_s: float | None = None
        self.start()

    def run(self) -> None:
        done = self.api.done_event(self.job_id, timeout_s=self.timeout_s)
        if done is not None and done.get("status") == "succeeded":
            self.latency_s = done["received_at"] - self.posted_at


def run_phase(name: str, args: argparse.Namespace, *, scheduling: str, with_long: bool) -> PhaseResult:
    result = PhaseResult(name)
    agents = RESERVED_AGENTS if args.agents == "reserved" and scheduling != "fifo" else DEFAULT_AGENTS
    started = time.monotonic()
    with start_stack(name, args, scheduling=scheduling, agents=agents) as stack:
        api = ApiClient(stack.gateway_url, stack.api_token)
        warm_up(api, len(agents))
        cpu_before, ticks_before = stack_cpu_s(stack), machine_ticks()
        long_ids: list[str] = []
        if with_long:
            long_ids = [api.submit(long_text(i, args.long_chars))["id"] for i in range(args.long_jobs)]
            time.sleep(args.long_head_start_s)  # the long jobs are queued and running
        short_ids: list[str] = []
        followers: list[ShortJobFollower] = []
        for i in range(args.short_jobs):
            posted_at = time.time()
            short_ids.append(api.submit(SHORT_TEXTS[i % len(SHORT_TEXTS)])["id"])
            followers.append(ShortJobFollower(api, short_ids[-1], posted_at, args.timeout_s))
            time.sleep(args.interval_s)
        for job, follower in zip(wait_all(api, short_ids, args.timeout_s), followers, strict=True):
            follower.join()
            if job["status"] != "succeeded":
                result.failures.append(f"short {job['id']}: {job['status']} {job['error']}")
            elif follower.latency_s is None:
                result.failures.append(f"short {job['id']}: succeeded, but its event stream never said done")
            else:
                result.short_latencies.append(follower.latency_s)
                result.short_job_latencies.append(latency_of(job))
        long_jobs = wait_all(api, long_ids, args.timeout_s)
        for job in long_jobs:
            if job["status"] == "succeeded":
                result.long_latencies.append(latency_of(job))
            else:
                result.failures.append(f"long {job['id']}: {job['status']} {job['error']}")
        cpu_used = {name: seconds - cpu_before[name] for name, seconds in stack_cpu_s(stack).items()}
        result.steal = steal_share(ticks_before, machine_ticks())
        result.agents_cpu_s = sum(seconds for name, seconds in cpu_used.items() if name.startswith("agent"))
        result.stack_cpu_s = sum(cpu_used.values())
        finished = [job for job in long_jobs if job["finished_at"]]
        if finished and len(finished) == len(long_jobs):
            first_submit = min(parse_time(job["queued_at"]) for job in long_jobs)
            result.long_makespan_s = max(parse_time(job["finished_at"]) for job in finished) - first_submit
    result.wall_s = time.monotonic() - started
    print(f"[{name}] done in {result.wall_s:.0f}s", flush=True)
    return result


@dataclass
class BurstResult:
    jobs_per_s: float
    latencies: list[float]
    failures: list[str]
    cpu_s_by_process: dict[str, float] = field(default_factory=dict)  # during the burst
    steal: float = 0.0  # the machine's stolen share of time during the burst (bench.cpu.machine_ticks)
    span_s: float = 0.0  # first queued to last finished
    fetch_s: float = 0.0  # every WAV read once, by the same clients, after the burst
    fetch_cpu_s: float = 0.0  # the stack's CPU for those reads


@dataclass
class BurstRound:
    """One burst on its own stack, between two measurements of pure synthesis (wall, CPU seconds
    of one burst job): its bound comes from those two, taken seconds before and after it."""

    result: BurstResult
    pure_before: tuple[float, float]
    pure_after: tuple[float, float]

    @property
    def pure_s(self) -> float:
        return (self.pure_before[0] + self.pure_after[0]) / 2

    @property
    def pure_cpu_s(self) -> float:
        return (self.pure_before[1] + self.pure_after[1]) / 2

    def bound(self, cores: int) -> float:
        return cores / self.pure_s

    def efficiency(self, cores: int) -> float:
        return self.result.jobs_per_s / self.bound(cores)


def median_round(rounds: Sequence[BurstRound], cores: int) -> BurstRound:
    """The round of median efficiency (the lower of the two middle ones for an even count): its
    own jobs/s and bound are printed, so `burst efficiency` stays exactly their ratio."""
    ranked = sorted(rounds, key=lambda one: one.efficiency(cores))
    return ranked[(len(ranked) - 1) // 2]


def run_burst(args: argparse.Namespace, *, name: str = "burst") -> BurstResult:
    """`args.burst_jobs` one-sentence jobs submitted at once by `args.burst_clients` threads."""
    with start_stack(name, args, scheduling="priority", agents=DEFAULT_AGENTS) as stack:
        api = ApiClient(stack.gateway_url, stack.api_token)
        warm_up(api, len(DEFAULT_AGENTS))
        ids: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()
        gate = threading.Barrier(args.burst_clients)

        def client(index: int) -> None:
            own = ApiClient(stack.gateway_url, stack.api_token)
            gate.wait()
            for n in range(index, args.burst_jobs, args.burst_clients):
                try:
                    job_id = own.submit(BURST_TEXTS[n % len(BURST_TEXTS)])["id"]
                except Exception as error:  # counted and reported; the burst goes on
                    with lock:
                        errors.append(f"submit {n}: {error}")
                    continue
                with lock:
                    ids.append(job_id)

        threads = [threading.Thread(target=client, args=(index,)) for index in range(args.burst_clients)]
        before, ticks_before = stack_cpu_s(stack), machine_ticks()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_idle(api, args.timeout_s)  # the stack runs nothing but the burst (and its finished warm-up)
        after, steal = stack_cpu_s(stack), steal_share(ticks_before, machine_ticks())
        jobs = wait_all(api, ids, args.timeout_s)  # all final: one read
        done = [job for job in jobs if job["status"] == "succeeded"]
        # Piper's clients get the WAV in the reply; these get it by a second request. Read once
        # the burst is over, so the burst's figures stay comparable with earlier runs.
        fetch_before, fetch_began = sum(stack_cpu_s(stack).values()), time.perf_counter()
        errors += fetch_audio(stack, [job["id"] for job in done], clients=args.burst_clients)
        fetch_s = time.perf_counter() - fetch_began
        fetch_cpu_s = sum(stack_cpu_s(stack).values()) - fetch_before
    failures = errors + [
        f"burst {job['id']}: {job['status']} {job['error']}" for job in jobs if job["status"] != "succeeded"
    ]
    span = max(parse_time(job["finished_at"]) for job in done) - min(parse_time(job["queued_at"]) for job in jobs)
    print(f"[{name}] {len(done)} jobs in {span:.1f}s, their WAVs read in {fetch_s:.1f}s", flush=True)
    return BurstResult(
        jobs_per_s=len(done) / span,
        latencies=[latency_of(job) for job in done],
        failures=failures,
        cpu_s_by_process={name: after[name] - before[name] for name in before},
        steal=steal,
        span_s=span,
        fetch_s=fetch_s,
        fetch_cpu_s=fetch_cpu_s,
    )


def fetch_audio(stack: Stack, job_ids: Sequence[str], *, clients: int) -> list[str]:
    """Each job's WAV read once, by `clients` threads; returns the failures."""
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        own = ApiClient(stack.gateway_url, stack.api_token)
        for job_id in job_ids[index::clients]:
            try:
                body = own.audio(job_id)
                if body[:4] != b"RIFF":
                    raise ValueError(f"not a WAV: {body[:40]!r}")
            except Exception as error:  # counted and reported like a failed job
                with lock:
                    errors.append(f"audio of {job_id}: {error}")

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def pure_synthesis_s(threads: int, conv_engine: ConvEngine | Literal["auto"], rounds: int = 3) -> tuple[float, float]:
    """Mean (wall, CPU) seconds `vits` takes for one burst job (text to audio, nothing else), in
    this process, at the agents' thread count, while no stack runs: the wall time is what the
    bound divides the cores by; the CPU time is what the same work costs however busy the machine."""
    import torch

    from vits import Voice

    torch.set_num_threads(threads)
    voice = Voice.load(conv_engine=conv_engine)  # what the agents use (TTS_VITS_CONV_ENGINE)
    voice.synthesize(BURST_TEXTS[0])  # warm-up
    walls, cpus = [], []
    for text in BURST_TEXTS:
        wall, cpu = [], []
        for _ in range(rounds):
            began, began_cpu = time.perf_counter(), time.process_time()
            voice.synthesize(text)
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        walls.append(statistics.median(wall))
        cpus.append(statistics.median(cpu))
    return statistics.mean(walls), statistics.mean(cpus)


def _co_run_worker(
    threads: int, conv_engine: ConvEngine | Literal["auto"], seconds: float, start: Any, rates: Any
) -> None:
    """One process of `co_run_jobs_per_s`: warm up, wait for the others, synthesize for `seconds`."""
    import torch

    from vits import Voice

    torch.set_num_threads(threads)
    voice = Voice.load(conv_engine=conv_engine)
    for text in BURST_TEXTS:
        voice.synthesize(text)
    start.wait()
    began, done = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - began) < seconds:
        voice.synthesize(BURST_TEXTS[done % len(BURST_TEXTS)])
        done += 1
    rates.put(done / elapsed)


def co_run_jobs_per_s(threads: int, conv_engine: ConvEngine | Literal["auto"], processes: int, seconds: float) -> float:
    """Burst jobs per second of `processes` bare synthesis loops running side by side.

    The ceiling of the machine itself: no service, no broker, no database, only the agents'
    synthesis at the agents' thread count. Two processes on two vCPUs may slow each other down
    (shared core resources, clock), which the bound (cores / one job alone) cannot show; on an
    AMD EPYC this ceiling came out at 0.94-1.12 of the bound over six runs.
    """
    context = multiprocessing.get_context("spawn")
    start, rates = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_co_run_worker, args=(threads, conv_engine, seconds, start, rates))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(rates.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join()
    return total


def describe(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"n={len(values):3d}  p50={percentile(values, 0.5):7.2f}s  p95={percentile(values, 0.95):7.2f}s  "
        f"max={max(values):7.2f}s"
    )


def run_burst_rounds(args: argparse.Namespace, first_pure: tuple[float, float]) -> list[BurstRound]:
    """`args.burst_rounds` bursts, each on a fresh stack, with pure synthesis measured between
    them: each round's bound brackets that round alone. One burst job alone moved from 0.131 to
    0.152 s across one burst on an AMD EPYC, and one burst's efficiency from 0.77 to 0.63 between
    two runs of the same code an hour apart: the median round is the figure, the others its spread."""
    rounds: list[BurstRound] = []
    pure_before = first_pure
    for index in range(args.burst_rounds):
        result = run_burst(args, name="burst" if args.burst_rounds == 1 else f"burst{index + 1}")
        pure_after = pure_synthesis_s(args.agent_threads, args.conv_engine)
        rounds.append(BurstRound(result=result, pure_before=pure_before, pure_after=pure_after))
        pure_before = pure_after
    return rounds


def print_burst(
    rounds: Sequence[BurstRound],
    args: argparse.Namespace,
    *,
    cores: int,
    co_run: tuple[float, float, float],
    steal: tuple[float, float],
) -> list[str]:
    """The burst's figures (the round of median efficiency, each round, the CPU of all rounds
    pooled); returns every round's failures."""
    chosen = median_round(rounds, cores)
    burst, bound = chosen.result, chosen.bound(cores)
    print(
        f"\n=== burst: {args.burst_jobs} one-sentence jobs from {args.burst_clients} clients, "
        f"{len(rounds)} round(s) (goal: efficiency >= 0.8) ==="
    )
    for index, one in enumerate(rounds, start=1):
        print(
            f"round {index}: {one.result.jobs_per_s:.2f} jobs/s against a bound of {one.bound(cores):.2f} "
            f"(one job alone {one.pure_before[0]:.3f}s before, {one.pure_after[0]:.3f}s after): "
            f"efficiency {one.efficiency(cores):.2f}; agents cpu per job / pure {agents_per_pure([one]):.2f}; "
            f"machine steal {100 * one.result.steal:.1f} %"
        )
    which = f"round {list(rounds).index(chosen) + 1}, the median" if len(rounds) > 1 else "the one round"
    print(
        f"{which}: pure synthesis of one job {chosen.pure_s:.3f}s at {args.agent_threads} thread(s); "
        f"latency {describe(burst.latencies)}"
    )
    print(f"burst jobs/s = {burst.jobs_per_s:.2f}")
    print(f"burst bound jobs/s = {bound:.2f}")
    print(f"burst efficiency = {burst.jobs_per_s / bound:.2f}")
    # The same burst against what the machine reaches with nothing but the agents' synthesis
    # running side by side: how much of the gap to the bound the service itself costs.
    before, after, seconds = co_run
    ceiling = (before + after) / 2
    print(
        f"{len(DEFAULT_AGENTS)} bare synthesis loops side by side, {seconds:.0f}s each time: "
        f"{before:.2f} jobs/s before the bursts, {after:.2f} after"
    )
    print(f"burst co-run ceiling jobs/s = {ceiling:.2f} ({ceiling / bound:.2f} of the bound)")
    print(f"burst efficiency vs co-run = {burst.jobs_per_s / ceiling:.2f}")
    # Where the CPU went, every round pooled: independent of what else runs on the machine,
    # unlike the figures above; pure / total is the efficiency the stack could reach with every
    # core to itself.
    jobs = max(1, sum(len(one.result.latencies) for one in rounds))
    by_process: dict[str, float] = {}
    for one in rounds:
        for name, used in one.result.cpu_s_by_process.items():
            by_process[name] = by_process.get(name, 0.0) + used
    pure_cpu_s = statistics.mean(one.pure_cpu_s for one in rounds)
    total = sum(by_process.values())
    print(f"cpu per burst job, {len(rounds)} round(s) pooled:")
    for name, used in by_process.items():
        print(f"  cpu {name:34s} {1000 * used / jobs:7.1f} ms/job")
    print(f"burst stack cpu per job = {total / jobs:.3f}s (pure synthesis {pure_cpu_s:.3f} cpu-s)")
    print(f"burst cpu efficiency = {pure_cpu_s * jobs / total:.2f}")
    # The agents do the pure synthesis and little else (95 % of an agent's samples are in vits
    # under py-spy): above 1, the same work ran slower beside the rest of the stack.
    print(f"burst agents cpu per job / pure = {agents_per_pure(rounds):.2f}")
    # Time the hypervisor gave to other guests: it slows the burst (and the bound) without
    # showing in any process's CPU seconds, and can differ between them.
    print(
        f"machine steal: {100 * steal[0]:.1f} % while the first bound and the ceiling were measured, "
        f"{100 * steal[1]:.1f} % while the ceiling was measured after the bursts"
    )
    fetch_s = sum(one.result.fetch_s for one in rounds)
    fetch_cpu_ms = 1000 * sum(one.result.fetch_cpu_s for one in rounds) / jobs
    print(f"the WAVs read after each burst: {jobs} in {fetch_s:.2f}s, {fetch_cpu_ms:.1f} ms of stack cpu each")
    return [failure for one in rounds for failure in one.result.failures]


def agents_per_pure(rounds: Sequence[BurstRound]) -> float:
    """The agents' CPU per burst job over the rounds, against pure synthesis's CPU per job."""
    agents = {agent.label for agent in DEFAULT_AGENTS}
    jobs = max(1, sum(len(one.result.latencies) for one in rounds))
    used = sum(seconds for one in rounds for name, seconds in one.result.cpu_s_by_process.items() if name in agents)
    return used / jobs / statistics.mean(one.pure_cpu_s for one in rounds)


LOG_DIR = Path(tempfile.gettempdir()) / "tts-bench-piper"


def print_piper(runs: Sequence[PiperBurst], burst: BurstResult | None, args: argparse.Namespace) -> None:
    """Piper's bursts, and the service's burst against them."""
    print(
        f"\n=== Piper's HTTP server (piper-tts 1.8, the same voice), the same {args.burst_jobs} texts from "
        f"{args.burst_clients} clients, each waiting for its WAV ==="
    )
    for name, run in zip(("before", "after"), runs, strict=False):
        print(
            f"{name} the service's burst: {run.jobs_per_s:.2f} jobs/s, one job alone {run.alone_s:.3f}s, "
            f"cpu {1000 * run.cpu_s / max(1, len(run.latencies)):.1f} ms/job; latency {describe(run.latencies)}"
        )
    piper = statistics.mean(run.jobs_per_s for run in runs)
    print(f"piper burst jobs/s = {piper:.2f}")
    if burst is None:
        return
    print(f"burst vs piper = {burst.jobs_per_s / piper:.2f}")
    # Piper's clients hold every WAV at the end; the service's read theirs after the burst.
    with_audio = len(burst.latencies) / (burst.span_s + burst.fetch_s)
    print(f"burst jobs/s with the WAVs read = {with_audio:.2f} (their reading added after the burst, not overlapped)")
    print(f"burst with the WAVs read vs piper = {with_audio / piper:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short-jobs", type=int, default=30)
    parser.add_argument("--long-jobs", type=int, default=10)
    parser.add_argument("--long-chars", type=int, default=5000)
    parser.add_argument("--interval-s", type=float, default=1.0, help="gap between short submissions")
    parser.add_argument("--long-head-start-s", type=float, default=3.0)
    parser.add_argument("--agent-threads", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=3600)
    parser.add_argument(
        "--phases",
        default="a,b,c,burst,piper",
        help="which of a,b,c,burst,piper to run (piper: Piper's HTTP server on the same burst, before and after)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of phases a, b, c, every second one in reverse order (a b c c b a); the ratios pool them "
        "(default 2, with --quick 1)",
    )
    parser.add_argument(
        "--agents",
        choices=("work-conserving", "reserved"),
        default="work-conserving",
        help="agents of (b): every agent serves every class (default), or one for short and one for medium,long",
    )
    parser.add_argument(
        "--background-nice",
        type=int,
        default=None,
        help="TTS_AGENT_BACKGROUND_NICE of the agents (default: the agent's, 19; 0 = lower classes step inline)",
    )
    parser.add_argument(
        "--conv-engine",
        choices=("auto", "onednn", "winograd"),
        default="auto",
        help="TTS_VITS_CONV_ENGINE of the agents and of the pure synthesis the bound is taken from",
    )
    parser.add_argument("--database", default="tts_bench", help="Postgres database to recreate for each phase")
    parser.add_argument("--burst-jobs", type=int, default=100)
    parser.add_argument("--burst-clients", type=int, default=20)
    parser.add_argument(
        "--burst-rounds",
        type=int,
        default=None,
        help="bursts, each on a fresh stack between two measurements of its bound; the figures are the "
        "median round's (default 3, with --quick 1)",
    )
    parser.add_argument("--quick", action="store_true", help="a short look: 10 short, 3 long of 2,000 chars, burst 40")
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.burst_rounds is None:
        args.burst_rounds = 1 if args.quick else 3
    if args.burst_rounds < 1:
        parser.error("--burst-rounds must be at least 1")
    if args.quick:
        args.short_jobs, args.long_jobs, args.long_chars, args.burst_jobs = 10, 3, 2000, 40
    cores = os.cpu_count() or 1
    print(
        f"isolation benchmark: {args.short_jobs} short jobs every {args.interval_s}s; "
        f"{args.long_jobs} long jobs of >= {args.long_chars} chars; {cores} cores; "
        f"{args.agent_threads} torch thread(s) per agent; {args.agents} agents; conv engine {args.conv_engine}; "
        "cache off; "
        f"background nice {'default' if args.background_nice is None else args.background_nice}",
        flush=True,
    )
    phases = {
        "a": ("(a) idle", "priority", False),
        "b": (f"(b) under long load, {args.agents}", "priority", True),
        "c": ("(c) FIFO baseline, under long load", "fifo", True),
    }
    wanted = [key.strip() for key in args.phases.split(",") if key.strip()]
    ticks_before = machine_ticks()
    first_pure = pure_synthesis_s(args.agent_threads, args.conv_engine) if "burst" in wanted else None
    co_run_s = 5.0 if args.quick else 15.0
    co_run_before = (
        co_run_jobs_per_s(args.agent_threads, args.conv_engine, len(DEFAULT_AGENTS), co_run_s)
        if "burst" in wanted
        else 0.0
    )
    steal_before = steal_share(ticks_before, machine_ticks())
    piper_runs: list[PiperBurst] = []
    piper_error = ""
    if "piper" in wanted:
        try:
            piper_runs += piper_bursts(BURST_TEXTS, jobs=args.burst_jobs, clients=args.burst_clients, log_dir=LOG_DIR)
        except PiperUnavailable as error:
            piper_error = str(error)
    order = [key for key in wanted if key in phases]
    runs: dict[str, list[PhaseResult]] = {key: [] for key in order}
    for round_index in range(args.rounds):
        # a b c, then c b a: a steady drift of the machine's speed weighs every phase alike.
        for key in order if round_index % 2 == 0 else order[::-1]:
            _label, scheduling, with_long = phases[key]
            name = key if args.rounds == 1 else f"{key}{round_index + 1}"
            runs[key].append(run_phase(name, args, scheduling=scheduling, with_long=with_long))
    results = {key: pooled(key, rounds_run) for key, rounds_run in runs.items()}
    burst_rounds = run_burst_rounds(args, first_pure) if first_pure is not None else []
    burst = median_round(burst_rounds, cores).result if burst_rounds else None
    co_run_after, steal_after = 0.0, 0.0
    if burst_rounds:
        ticks_after = machine_ticks()
        co_run_after = co_run_jobs_per_s(args.agent_threads, args.conv_engine, len(DEFAULT_AGENTS), co_run_s)
        steal_after = steal_share(ticks_after, machine_ticks())
    if piper_runs:  # after the burst too: the machine's drift weighs both sides alike
        piper_runs += piper_bursts(BURST_TEXTS, jobs=args.burst_jobs, clients=args.burst_clients, log_dir=LOG_DIR)

    def each_round(key: str, figure: Callable[[PhaseResult], str]) -> None:
        if len(runs[key]) > 1:
            for index, result in enumerate(runs[key], start=1):
                print(f"{f'    round {index}':42s} {figure(result)}")

    print("\n=== short-job latency, POST to audio ready (the SSE `done` event at the client) ===")
    for key, result in results.items():
        print(f"{phases[key][0]:42s} {describe(result.short_latencies)}")
        each_round(key, lambda one: describe(one.short_latencies))
    print(
        "\n=== the same jobs from their timestamps, queued to the agent's `completed` "
        "(without broker, consumer, WAV) ==="
    )
    for key, result in results.items():
        print(f"{phases[key][0]:42s} {describe(result.short_job_latencies)}")
    print("\n=== long-job completion time (queued to the agent's `completed`) ===")
    for key, result in results.items():
        if phases[key][2]:
            print(f"{phases[key][0]:42s} {describe(result.long_latencies)}  makespan={result.long_makespan_s:.1f}s")
            each_round(key, lambda one: f"{describe(one.long_latencies)}  makespan={one.long_makespan_s:.1f}s")
    for key in results:
        if phases[key][2]:
            print(f"{phases[key][0]:42s} cpu (from the first submit until all jobs were final):")
            for index, one in enumerate(runs[key], start=1):
                print(
                    f"{f'    round {index}':42s} agents {one.agents_cpu_s:.1f}s, whole stack {one.stack_cpu_s:.1f}s; "
                    f"machine steal {100 * one.steal:.1f} %"
                )
    rounds = f" (over {args.rounds} rounds)" if args.rounds > 1 else ""
    print(f"\n=== ratios{rounds} (goals: b/a <= 1.2, long makespan b/c <= 1.05) ===")
    for name, ratio in phase_ratios(results).items():
        print(f"{name} = {ratio:.2f}")
    if "a" in results:
        # Chance in which jobs were slow, not the machine's drift between phases (the rounds show that).
        for key in ("b", "c"):
            if key in results:
                low, high = ratio_interval(results[key].short_latencies, results["a"].short_latencies)
                print(f"{key}/a 90 % bootstrap interval over the jobs: {low:.2f} to {high:.2f}")
    if args.rounds > 1:  # each round's, for the reader: the `X = Y` lines above pool the rounds
        for index in range(args.rounds):
            ratios = phase_ratios({key: one[index] for key, one in runs.items()})
            print(f"round {index + 1}: " + ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items()))
    failures = [f for result in results.values() for f in result.failures]
    if burst_rounds:
        failures += print_burst(
            burst_rounds,
            args,
            cores=cores,
            co_run=(co_run_before, co_run_after, co_run_s),
            steal=(steal_before, steal_after),
        )
    if piper_error:
        print(f"\n=== Piper's HTTP server: not measured ({piper_error}) ===")
    elif piper_runs:
        failures += [failure for run in piper_runs for failure in run.failures]
        print_piper(piper_runs, burst, args)
    if failures:
        print("\nFAILED JOBS:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
