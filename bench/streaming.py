"""Streaming latency: first audio vs complete audio, SSE `done` delay, 200 concurrent SSE clients.

Starts its own stack as bench/isolation.py does (pulsar-lite, Postgres when reachable, gunicorn
with ONE uvicorn worker so that every stream is held by one gateway process, the consumer, two
agents; sentence cache off), then measures from the client's side:

- a one-sentence job and a long job (`--long-chars`, 5,000 by default), each through
  `POST /v1/audio/speech` (response_format=pcm) and through `POST /api/v1/jobs` +
  `GET .../audio/stream?format=pcm`: time from the request to the first audio byte, time to the
  complete audio, and their ratio;
- for `--sse-jobs` short jobs, the time from the job's `finished_at` to the SSE `done` event
  at the client (p50/p95);
- `--sse-clients` concurrent SSE clients over `--sse-jobs` jobs, and how many got `done`;
- the first audio of a long text through `/audio/stream` with the agents' previews on (the
  default TTS_PREVIEW_MIN_SECONDS) and off (`0`): a second stack with previews off runs beside
  the first, and `--preview-rounds` rounds alternate between them (medians printed);
- in this process at 1 thread, before any stack: the first chunk of a previewed (5 s or longer)
  sentence with `first_chunk_early` (the flow over the first window only, then the rest) and
  without (the flow over the whole sentence first), `--first-chunk-rounds` rounds alternating,
  and the whole sentence's CPU time each way (what the early first chunk costs). The agent does
  not use that vits option (its samples are not bit-identical, vits/README.md): this measures
  what it would win.

It ends with exactly these lines:
    long first_audio/total = R
    sse done p95 ms = X
    sse clients done = N/200
    long first audio ms previews on = X
    long first audio ms previews off = Y
    long first audio previews on/off = R
    first chunk ms early = X
    first chunk ms whole flow = Y
    first chunk early/whole = R
    sentence cpu early/whole = C

    .venv/bin/python bench/streaming.py                      # full run
    .venv/bin/python bench/streaming.py --first-chunk-only   # only the first-chunk comparison
    .venv/bin/python bench/streaming.py --long-chars 1500    # quicker look
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.isolation import LONG_SENTENCES, parse_time
from bench.spread import percentile
from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import postgres_available, recreate_database
from devstack.stack import Stack, StackConfig
from synthesis_agent.outcomes import DEFAULT_PREVIEW_MIN_SECONDS
from tts_contracts.defaults import estimate_audio_seconds

ONE_SENTENCE = "The quick brown fox jumps over the lazy dog."


def long_text(min_chars: int, salt: int) -> str:
    parts: list[str] = []
    index = salt
    while sum(len(part) + 1 for part in parts) < min_chars:
        parts.append(LONG_SENTENCES[index % len(LONG_SENTENCES)])
        index += 1
    return " ".join(parts)


@dataclass
class Timing:
    first_s: float
    total_s: float
    audio_bytes: int

    @property
    def ratio(self) -> float:
        return self.first_s / self.total_s


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.port = stack.config.web_port
        self.api = ApiClient(stack.gateway_url, stack.api_token, timeout_s=600)
        self.headers = {"Authorization": f"Bearer {stack.api_token}"}

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800)

    def _read_timed(self, response: http.client.HTTPResponse, started: float) -> Timing:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
        first = response.read1(65536)
        first_s = time.monotonic() - started
        size = len(first)
        while chunk := response.read1(65536):
            size += len(chunk)
        return Timing(first_s=first_s, total_s=time.monotonic() - started, audio_bytes=size)

    def speech(self, text: str) -> Timing:
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": text[:4096], "response_format": "pcm"})
        connection = self._connection()
        started = time.monotonic()
        connection.request(
            "POST", "/v1/audio/speech", body=body, headers={**self.headers, "Content-Type": "application/json"}
        )
        try:
            return self._read_timed(connection.getresponse(), started)
        finally:
            connection.close()

    def stream(self, text: str) -> Timing:
        started = time.monotonic()
        job = self.api.submit(text)
        connection = self._connection()
        connection.request("GET", f"/api/v1/jobs/{job['id']}/audio/stream?format=pcm", headers=self.headers)
        try:
            return self._read_timed(connection.getresponse(), started)
        finally:
            connection.close()


def describe(name: str, timing: Timing) -> str:
    return (
        f"{name:<32} first audio {timing.first_s * 1000:8.0f} ms   total {timing.total_s:7.2f} s   "
        f"ratio {timing.ratio:.3f}   ({timing.audio_bytes / 2 / 22050:.1f} s of audio)"
    )


def sse_clients(bench: Bench, *, clients: int, jobs: int) -> int:
    job_ids = [bench.api.submit(f"Client batch sentence number {index}. It ends here.")["id"] for index in range(jobs)]
    results: list[dict | None] = [None] * clients

    def follow(index: int) -> None:
        results[index] = bench.api.done_event(job_ids[index % jobs])

    threads = [threading.Thread(target=follow, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    return sum(1 for result in results if result and result.get("status") == "succeeded")


def start_stack(args: argparse.Namespace, *, name: str, extra: dict[str, str]) -> Stack:
    env = {"TTS_CACHE_ENABLED": "0", "TTS_AGENT_THREADS": "1", **extra}
    if postgres_available():
        env["DATABASE_URL"] = recreate_database(f"{args.database}{name}")
    var_dir = Path(tempfile.mkdtemp(prefix=f"tts-bench-streaming{name}-"))
    config = StackConfig(
        var_dir=var_dir, web_port=free_port(), consumer_metrics_port=free_port(), web_workers=1, extra_env=env
    )
    print(f"starting the stack in {var_dir} (one gateway worker)", flush=True)
    return Stack(config)


def warm_up(bench: Bench) -> None:
    bench.api.submit_and_wait("Warming up.", timeout_s=300)
    bench.api.submit_and_wait(long_text(600, 3), timeout_s=300)


def compare_previews(args: argparse.Namespace, previews_on: Bench) -> tuple[list[float], list[float]]:
    """First audio (s) of the same long texts with previews on and off, rounds alternating
    between the running stack and a second one whose agents send none."""
    on: list[float] = []
    off: list[float] = []
    with start_stack(args, name="_no_previews", extra={"TTS_PREVIEW_MIN_SECONDS": "0"}) as stack:
        previews_off = Bench(stack)
        warm_up(previews_off)
        for index in range(args.preview_rounds):
            text = long_text(args.preview_chars, 10 + index)  # a new first sentence each round, on both
            benches = [(previews_on, on), (previews_off, off)]
            for bench, results in benches if index % 2 == 0 else benches[::-1]:
                timing = bench.stream(text + f" Round {index}.")
                results.append(timing.first_s)
                label = "on" if bench is previews_on else "off"
                print(describe(f"round {index} previews {label}", timing), flush=True)
    return on, off


def print_previews(on: list[float], off: list[float]) -> None:
    on_ms, off_ms = statistics.median(on) * 1000, statistics.median(off) * 1000
    print(f"long first audio ms previews on = {on_ms:.0f}")
    print(f"long first audio ms previews off = {off_ms:.0f}")
    print(f"long first audio previews on/off = {on_ms / off_ms:.2f}")


@dataclass
class FirstChunks:
    early_s: list[float]
    whole_s: list[float]
    early_cpu_s: float
    whole_cpu_s: float


def compare_first_chunk(rounds: int) -> FirstChunks:
    """First chunk and whole-sentence CPU of previewed sentences with and without
    `first_chunk_early`, alternating, on a 1-thread voice in this process (as a 1-thread agent)."""
    from vits import Voice

    voice = Voice.load(threads=1)
    sentences = [
        sentence
        for text in LONG_SENTENCES
        for sentence in voice.prepare(text)
        if estimate_audio_seconds(chars=len(sentence)) >= DEFAULT_PREVIEW_MIN_SECONDS
    ][:6]
    if not sentences:
        raise SystemExit("no bench sentence is long enough to be previewed")
    result = FirstChunks([], [], 0.0, 0.0)
    for sentence in sentences[:2]:  # warm both paths
        for early in (True, False):
            list(voice.sentence_chunks(sentence, first_chunk_early=early))
    for index in range(rounds):
        for sentence in sentences:
            for early in (True, False) if index % 2 == 0 else (False, True):
                cpu_began, began = time.process_time(), time.perf_counter()
                chunks = voice.sentence_chunks(sentence, first_chunk_early=early)
                next(chunks)
                first_s = time.perf_counter() - began
                list(chunks)
                cpu_s = time.process_time() - cpu_began
                if early:
                    result.early_s.append(first_s)
                    result.early_cpu_s += cpu_s
                else:
                    result.whole_s.append(first_s)
                    result.whole_cpu_s += cpu_s
    print(f"first chunk: {len(sentences)} sentences x {rounds} rounds at 1 thread", flush=True)
    return result


def print_first_chunks(result: FirstChunks) -> None:
    early_ms, whole_ms = statistics.median(result.early_s) * 1000, statistics.median(result.whole_s) * 1000
    print(f"first chunk ms early = {early_ms:.0f}")
    print(f"first chunk ms whole flow = {whole_ms:.0f}")
    print(f"first chunk early/whole = {early_ms / whole_ms:.2f}")
    print(f"sentence cpu early/whole = {result.early_cpu_s / result.whole_cpu_s:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long-chars", type=int, default=5000)
    parser.add_argument("--sse-jobs", type=int, default=20)
    parser.add_argument("--sse-clients", type=int, default=200)
    parser.add_argument("--database", default=os.environ.get("TTS_BENCH_DATABASE", "tts_bench_streaming"))
    parser.add_argument("--preview-rounds", type=int, default=6, help="long texts streamed per stack, alternating")
    parser.add_argument("--preview-chars", type=int, default=1500, help="length of each of those texts")
    parser.add_argument("--previews-only", action="store_true", help="only the previews on/off comparison")
    parser.add_argument("--first-chunk-rounds", type=int, default=4, help="rounds of the first-chunk comparison")
    parser.add_argument("--first-chunk-only", action="store_true", help="only the first-chunk comparison")
    args = parser.parse_args()

    first_chunks = compare_first_chunk(args.first_chunk_rounds)  # before any stack loads the cores
    if args.first_chunk_only:
        print_first_chunks(first_chunks)
        return 0

    with start_stack(args, name="", extra={}) as stack:
        bench = Bench(stack)
        warm_up(bench)
        if args.previews_only:
            on, off = compare_previews(args, bench)
            print_previews(on, off)
            print_first_chunks(first_chunks)
            return 0

        print(describe("one sentence /v1/audio/speech", bench.speech(ONE_SENTENCE)), flush=True)
        print(describe("one sentence /audio/stream", bench.stream(ONE_SENTENCE + " Again.")), flush=True)
        long_speech = bench.speech(long_text(min(args.long_chars, 4096), 0))
        print(describe(f"long {min(args.long_chars, 4096)} chars /v1/audio/speech", long_speech), flush=True)
        long_stream = bench.stream(long_text(args.long_chars, 1))
        print(describe(f"long {args.long_chars} chars /audio/stream", long_stream), flush=True)

        delays_ms: list[float] = []
        for index in range(args.sse_jobs):
            job = bench.api.submit(f"Event timing sentence {index}.")
            done = bench.api.done_event(job["id"])
            if done and done.get("finished_at"):
                delays_ms.append((done["received_at"] - parse_time(done["finished_at"])) * 1000)
        print(
            f"sse done delay over {len(delays_ms)} jobs: p50 {percentile(delays_ms, 0.5):.0f} ms, "
            f"p95 {percentile(delays_ms, 0.95):.0f} ms, max {max(delays_ms, default=float('nan')):.0f} ms",
            flush=True,
        )
        done_clients = sse_clients(bench, clients=args.sse_clients, jobs=args.sse_jobs)
        on, off = compare_previews(args, bench)

    print(f"long first_audio/total = {long_stream.ratio:.3f}")
    print(f"sse done p95 ms = {percentile(delays_ms, 0.95):.0f}")
    print(f"sse clients done = {done_clients}/{args.sse_clients}")
    print_previews(on, off)
    print_first_chunks(first_chunks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
