"""Benchmark: raw text to audio, `vits` against Piper's own recipe, and where the gap comes from.

    .venv/bin/python bench/end_to_end.py            # 5 rounds over bench/synthesis.py's sentences
    .venv/bin/python bench/end_to_end.py --quick    # 1 round, 3 sentences (a smoke test)

bench/synthesis.py compares the engines alone on the same ids at the same thread count; a
caller comparing `Voice.load().synthesize(text)` with Piper (`PiperVoice.synthesize`) measures
more than that. Every figure below is taken in one process (the import-order pair in child
processes) in the same rounds, whose order alternates (ABBA: forward, then backward), each
measurement a whole pass over the sentences; the table shows medians over rounds.

- vits end-to-end: `Voice.load()` without arguments (torch's default thread count, one decode
  window per thread), then `voice.synthesize(text)` for each sentence as its own text.
- piper recipe: bench/piper_recipe.py (eSpeak clause by clause, sentences at eSpeak's sentence
  ends, one `session.run` per sentence on a session with default `SessionOptions`).
- vits engine / ort default: the engines alone on the same ids (vits' front end's), no seed.
- ort default, piper ids: the recipe's session on the recipe's own ids and sentence groups.
- ort N threads: intra-op N (vits' thread count), inter-op 1, as bench/synthesis.py builds it;
  "no spin" (here and with default options) adds `session.intra_op.allow_spinning = 0`.
- vits after ort (spin / no spin): vits' time when every sentence follows one onnxruntime call
  on the same sentence (default options, with and without spinning): a comparison that
  alternates sentence by sentence instead of by whole passes.
- import vits first / import torch first: a child process that imports them in that order, then
  `Voice.load().synthesize(text)` per sentence; `import vits` sets `OMP_WAIT_POLICY=PASSIVE`
  only when torch is not imported yet. The child gets this process's original environment.
- front end: vits `voice.prepare` + `voice.phoneme_ids`, and the recipe's phonemization + ids.

With medians E_v, E_p (end-to-end), I_v, I_o, I_op, I_n (engines alone, as listed), F_v, F_p
(front ends), S_on, S_off (vits after ort) and P_t, P_v (torch first, vits first):

    end-to-end ratio = E_v / E_p
    engine ratio = I_v / I_o                   the same ids, Piper's onnxruntime options
    gap from front end = (E_p + F_v - F_p) / E_p   the recipe's time with vits' front end instead
    gap from clause splitting = I_o / I_op     the same session on vits' sentences vs Piper's
    gap from thread pool = I_n / I_o           bench/synthesis.py's onnxruntime options vs default
    gap from spinning = S_on / S_off           vits right after spinning vs idle onnxruntime threads
    gap from import order = P_t / P_v          torch imported before vits vs after

A gap above 1 raises vits' figure. The first three causes multiply into the end-to-end ratio:
end-to-end ratio = engine ratio x front end x clause splitting x rest, and the last line prints
that rest (what `Voice.synthesize` and the recipe do around the engine beyond the front end,
and noise). engine ratio = I_v / I_n (what bench/synthesis.py measures, also printed) x gap
from thread pool. Spinning and import order are harness effects that this run keeps out of
the end-to-end ratio (whole-pass alternation, vits imported first): they say how much a
comparison that alternates sentence by sentence, or imports torch first, would add on top.
When the front ends give the same ids ("same ids: yes"), clause splitting is noise around 1.
No measurement is seeded (neither `Voice.synthesize` nor Piper seeds its noise), so durations
vary a little from pass to pass; the table shows each one's audio seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

# Read before anything imports vits, which may set it: the children get the environment as it was.
ORIGINAL_ENVIRONMENT = dict(os.environ)

QUICK_SENTENCES = 3

_IMPORT_ORDER_PROBE = """
import json, os, sys, time
sys.path.insert(0, {root!r})
if {torch_first!r}:
    import torch
from vits import Voice
voice = Voice.load()
texts = {texts!r}
for text in texts:  # warm-up, untimed, as the parent warms up its measurements
    voice.synthesize(text)
started = time.perf_counter()
audio = sum(voice.synthesize(text).duration_s for text in texts)
print(json.dumps({{"seconds": time.perf_counter() - started, "audio": audio,
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY")}}))
"""


@dataclass
class Pass:
    """What one measurement produced in one pass: the seconds it timed and the audio seconds."""

    seconds: float
    audio: float


@dataclass
class Measurement:
    name: str
    run: Callable[[], Pass]
    passes: list[Pass]

    def median(self) -> float:
        return statistics.median(p.seconds for p in self.passes)

    def median_audio(self) -> float:
        return statistics.median(p.audio for p in self.passes)


def timed(work: Callable[[], float]) -> Callable[[], Pass]:
    """A pass that times all of `work`, which returns the audio seconds it made."""

    def run() -> Pass:
        started = time.perf_counter()
        audio = work()
        return Pass(time.perf_counter() - started, audio)

    return run


def import_order_run(texts: list[str], *, torch_first: bool, wait_policies: set[str]) -> Callable[[], Pass]:
    """A child process's timed pass; adds the OMP_WAIT_POLICY it ran with to `wait_policies`."""
    code = _IMPORT_ORDER_PROBE.format(root=str(ROOT), torch_first=torch_first, texts=texts)

    def run() -> Pass:
        result = subprocess.run(
            [sys.executable, "-c", code], env=ORIGINAL_ENVIRONMENT, capture_output=True, text=True, check=True
        )
        report = json.loads(result.stdout.strip().splitlines()[-1])
        wait_policies.add(f"{'torch' if torch_first else 'vits'} first: {report['wait_policy']}")
        return Pass(report["seconds"], report["audio"])

    return run


def pinned_new_threads(create: Callable[[], Any]) -> tuple[Any, list[str]]:
    """`create()` and the CPU lists (/proc) of the threads it started: shows onnxruntime's pinning."""
    tasks = Path("/proc/self/task")
    before = set(os.listdir(tasks)) if tasks.is_dir() else set()
    made = create()
    cpus = []
    for tid in sorted(set(os.listdir(tasks)) - before if tasks.is_dir() else ()):
        for line in (tasks / tid / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                cpus.append(line.split()[1])
    return made, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (ABBA), medians over rounds")
    parser.add_argument("--quick", action="store_true", help=f"1 round, {QUICK_SENTENCES} sentences")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    if rounds < 1:
        raise SystemExit("--rounds must be at least 1")

    from vits import Voice  # noqa: I001 - first, as bench/synthesis.py: vits sets the OpenMP wait policy

    import onnxruntime
    import torch

    from bench.piper_recipe import PiperRecipe, piper_clauses
    from bench.synthesis import SENTENCES

    texts = SENTENCES[:QUICK_SENTENCES] if args.quick else list(SENTENCES)
    default_threads = torch.get_num_threads()
    voice = Voice.load()
    intra_op = torch.get_num_threads()  # what Voice.load() left for its workers
    if voice.info.format != "piper":
        raise SystemExit("the Piper recipe needs a Piper .onnx voice")
    piper, default_pins = pinned_new_threads(lambda: PiperRecipe.load(voice.info.model_path, voice.info.config_path))

    def session(*, threads: int | None, spinning: bool) -> Any:
        options = onnxruntime.SessionOptions()
        if threads is not None:  # as bench/synthesis.py builds it
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(voice.info.model_path), options, providers=["CPUExecutionProvider"])

    piper_no_spin = piper.with_session(session(threads=None, spinning=False))
    piper_threads = piper.with_session(session(threads=default_threads, spinning=True))
    piper_threads_no_spin = piper.with_session(session(threads=default_threads, spinning=False))

    # The ids each front end gives (counted outside the timing).
    our_ids = [voice.phoneme_ids(sentence) for text in texts for sentence in voice.prepare(text)]
    piper_ids = [ids for text in texts for ids in piper.sentence_ids(text)]
    clause_count = sum(len(piper_clauses(text, piper.language)) for text in texts)
    params = voice.resolve_params()  # the voice's defaults, no seed: as synthesize(text) runs
    rate = voice.sample_rate

    def vits_end_to_end() -> float:
        return sum(voice.synthesize(text).duration_s for text in texts)

    def piper_end_to_end() -> float:
        return sum(piper.synthesize(text).size for text in texts) / rate

    def vits_engine() -> float:
        return sum(voice.synthesize_ids([ids], params)[0].duration_s for ids in our_ids)

    def ort_pass(recipe: PiperRecipe, batch: list[list[int]]) -> Callable[[], float]:
        return lambda: sum(recipe.audio_of_ids(ids).size for ids in batch) / rate

    def vits_after(recipe: PiperRecipe) -> Callable[[], Pass]:
        def run() -> Pass:
            seconds = audio = 0.0
            for ids in our_ids:
                recipe.audio_of_ids(ids)  # untimed: leaves its threads as they are after a call
                started = time.perf_counter()
                audio += voice.synthesize_ids([ids], params)[0].duration_s
                seconds += time.perf_counter() - started
            return Pass(seconds, audio)

        return run

    def vits_front_end() -> float:
        for text in texts:
            for sentence in voice.prepare(text):
                voice.phoneme_ids(sentence)
        return 0.0

    def piper_front_end() -> float:
        for text in texts:
            piper.sentence_ids(text)
        return 0.0

    child_policies: set[str] = set()
    runs: list[tuple[str, Callable[[], Pass]]] = [
        ("vits end-to-end", timed(vits_end_to_end)),
        ("piper recipe", timed(piper_end_to_end)),
        ("vits engine", timed(vits_engine)),
        ("ort default", timed(ort_pass(piper, our_ids))),
        ("ort default, piper ids", timed(ort_pass(piper, piper_ids))),
        ("ort default, no spin", timed(ort_pass(piper_no_spin, our_ids))),
        (f"ort {default_threads} threads", timed(ort_pass(piper_threads, our_ids))),
        (f"ort {default_threads} threads, no spin", timed(ort_pass(piper_threads_no_spin, our_ids))),
        ("vits after ort (spin)", vits_after(piper)),
        ("vits after ort (no spin)", vits_after(piper_no_spin)),
        ("vits front end", timed(vits_front_end)),
        ("piper front end", timed(piper_front_end)),
        ("import vits first", import_order_run(texts, torch_first=False, wait_policies=child_policies)),
        ("import torch first", import_order_run(texts, torch_first=True, wait_policies=child_policies)),
    ]
    measurements = [Measurement(name, run, []) for name, run in runs]
    for measurement in measurements:  # warm-up, untimed (the children warm up themselves)
        if not measurement.name.startswith("import"):
            measurement.run()
    for round_index in range(rounds):
        for measurement in measurements if round_index % 2 == 0 else measurements[::-1]:
            measurement.passes.append(measurement.run())

    print(f"voice {voice.info.id}, {len(texts)} texts x {rounds} round(s), alternating (ABBA), medians over rounds")
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, cpus {os.cpu_count()}")
    print(
        f"vits: Voice.load() took torch's {default_threads} thread(s): {voice.workers.count} decode worker(s) "
        f"at intra-op {intra_op}; OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY')!r} here "
        f"({ORIGINAL_ENVIRONMENT.get('OMP_WAIT_POLICY')!r} before vits was imported); "
        f"children's: {', '.join(sorted(child_policies))}"
    )
    print(
        f"onnxruntime default options: {len(default_pins)} intra-op worker thread(s) started, "
        f"CPUs allowed {default_pins or 'n/a'} (process: {sorted(os.sched_getaffinity(0))})"
    )
    print(
        f"front end: vits {len(our_ids)} sentence(s), {sum(map(len, our_ids))} ids; piper recipe "
        f"{len(piper_ids)} sentence(s) from {clause_count} clause(s), {sum(map(len, piper_ids))} ids; "
        f"same ids: {'yes' if our_ids == piper_ids else 'no'}"
    )
    print(f"{'measurement':34s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'audio s':>8s} {'RTF':>7s}")
    for m in measurements:
        seconds = [p.seconds for p in m.passes]
        audio = m.median_audio()
        rtf = f"{m.median() / audio:7.4f}" if audio > 0 else f"{'':7s}"
        print(f"{m.name:34s} {m.median():9.4f} {min(seconds):8.4f} {max(seconds):8.4f} {audio:8.2f} {rtf}")

    median = {m.name: m.median() for m in measurements}
    e_v, e_p = median["vits end-to-end"], median["piper recipe"]
    i_v, i_o, i_op = median["vits engine"], median["ort default"], median["ort default, piper ids"]
    i_n = median[f"ort {default_threads} threads"]
    i_n_no_spin = median[f"ort {default_threads} threads, no spin"]
    engine = i_v / i_o
    front_end = (e_p + median["vits front end"] - median["piper front end"]) / e_p
    clause_splitting = i_o / i_op
    print(f"end-to-end ratio = {e_v / e_p:.3f}")
    print(f"engine ratio = {engine:.3f}")
    print(f"gap from front end = {front_end:.3f}")
    print(f"gap from clause splitting = {clause_splitting:.3f}")
    print(f"gap from thread pool = {i_n / i_o:.3f}")
    print(f"gap from spinning = {median['vits after ort (spin)'] / median['vits after ort (no spin)']:.3f}")
    print(f"gap from import order = {median['import torch first'] / median['import vits first']:.3f}")
    print(
        f"rest = end-to-end ratio / (engine ratio x front end x clause splitting) = "
        f"{e_v / e_p / (engine * front_end * clause_splitting):.3f}; "
        f"bench/synthesis.py-style engine ratio (ort {default_threads} threads) = {i_v / i_n:.3f}; "
        f"ort no spin / spin at {default_threads} threads = {i_n_no_spin / i_n:.3f}"
    )


if __name__ == "__main__":
    main()
