"""End-to-end latency of a one-sentence job beside that sentence's pure synthesis time.

Starts the real stack (as `make run` does, on Postgres and Redis when they are reachable),
submits the same sentence N times with the cache off, and for each job measures POST to
audio ready two ways: on the client (polling every 10 ms) and from the job's own timestamps.
In this process it then times `Voice.synthesize_sentence` on the same sentence with the same
thread count as the agent, so the overhead of the service (HTTP, database, broker, events,
WAV assembly) is the difference.

    .venv/bin/python bench/latency.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.isolation import latency_of
from bench.spread import percentile
from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import Stack, StackConfig

SENTENCE = "The quick brown fox jumps over the lazy dog."


def pure_synthesis_seconds(rounds: int, threads: int) -> tuple[float, float]:
    import torch

    from vits import Voice

    voice = Voice.load(threads=threads)
    torch.set_num_threads(threads)
    (sentence,) = voice.prepare(SENTENCE)
    voice.synthesize_sentence(sentence)  # warm-up
    times = []
    duration = 0.0
    for _ in range(rounds):
        began = time.perf_counter()
        audio = voice.synthesize_sentence(sentence)
        times.append(time.perf_counter() - began)
        duration = audio.duration_s
    return statistics.median(times), duration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--agent-threads", type=int, default=1)
    args = parser.parse_args()

    env = {"TTS_CACHE_ENABLED": "0", "TTS_AGENT_THREADS": str(args.agent_threads)}
    if postgres_available():
        env["DATABASE_URL"] = recreate_database("tts_bench")
    stack = Stack(
        StackConfig(
            var_dir=Path(tempfile.mkdtemp(prefix="tts-latency-")),
            web_port=free_port(),
            consumer_metrics_port=free_port(),
            extra_env=env,
        )
    )
    client_latencies: list[float] = []
    server_latencies: list[float] = []
    agent_synthesis: list[float] = []
    with stack:
        api = ApiClient(stack.gateway_url, stack.api_token)
        api.submit_and_wait("Warming up.")
        for _ in range(args.jobs):
            began = time.perf_counter()
            job = api.wait(api.submit(SENTENCE)["id"], poll_s=0.01)
            client_latencies.append(time.perf_counter() - began)
            if job["status"] != "succeeded":
                print(f"job failed: {job}")
                return 1
            server_latencies.append(latency_of(job))
            agent_synthesis.append(job["timings"]["synthesis_s"])
            time.sleep(0.2)
    pure_s, audio_s = pure_synthesis_seconds(args.jobs, args.agent_threads)

    print(f'sentence: "{SENTENCE}" ({audio_s:.2f} s of audio), {args.jobs} jobs, cache off')
    print(f"{args.agent_threads} torch thread(s) in the agent and in the pure measurement")
    for name, values in (
        ("POST to audio ready, client", client_latencies),
        ("POST to audio ready, job timestamps", server_latencies),
        ("synthesis inside the agent", agent_synthesis),
    ):
        print(f"{name:38s} p50 {percentile(values, 0.5):.3f} s   p95 {percentile(values, 0.95):.3f} s")
    print(f"{'pure vits synthesize_sentence':38s} p50 {pure_s:.3f} s")
    overhead = percentile(client_latencies, 0.5) - pure_s
    print(f"service overhead at p50 (client latency - pure synthesis): {overhead:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
