"""Benchmark: PyTorch VITS (`vits`) against onnxruntime on the same Piper voice.

Both engines get the same phoneme ids, the same thread count and the voice's default noise
settings; sentences alternate between engines so background load hits both alike. Prints
real-time factors (synthesis seconds / audio seconds; lower is better), their ratio, model
load times and the peak resident memory of a process holding a loaded voice.

    .venv/bin/python bench/synthesis.py --threads 2
    .venv/bin/python bench/synthesis.py --threads 2 --compile  # also vits under torch.compile
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "Is this the real life, or is it just fantasy?",
    "Photosynthesis converts light energy into chemical energy that plants, algae and bacteria can use.",
    "On the twelfth of May the meeting started at nine thirty and ended well after noon.",
    "Doctor Smith paid three dollars and fifty cents for a small coffee.",
    "I can't believe it's already Friday, said Anna, smiling at her colleagues.",
    "Yes.",
    "The committee will publish its final report on the new railway line early next spring.",
    "Wind turbines along the coast now supply nearly a third of the region's electricity.",
]

_MEMORY_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
import torch
base = status('VmRSS:')
from vits import Voice
voice = Voice.load({voice!r}, threads={threads})
loaded = status('VmHWM:')
rss_loaded = status('VmRSS:')
voice.synthesize_sentence({sentence!r})
print(json.dumps({{"rss_before_load": base, "peak_after_load": loaded, "rss_after_load": rss_loaded,
                  "peak_after_synthesis": status('VmHWM:'), "rss_after_synthesis": status('VmRSS:')}}))
"""


def measure_memory(voice: str | None, threads: int) -> dict[str, int]:
    """Peak RSS in a fresh process (this one holds two engines and would overstate it)."""
    code = _MEMORY_PROBE.format(root=str(ROOT), voice=voice, threads=threads, sentence=SENTENCES[1])
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both engines")
    parser.add_argument("--voice", default=None, help="voice id or .onnx path (default: en_US-joe-medium)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the sentences per engine")
    parser.add_argument("--batch", action="store_true", help="also time vits with all sentences in one batch")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess")
    parser.add_argument(
        "--compile", action="store_true", help="also time vits with compile=True (a second copy of the voice)"
    )
    args = parser.parse_args()

    from vits import SynthesisParams, Voice  # noqa: I001 - first: vits sets the OpenMP wait policy before torch loads

    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    voice = Voice.load(args.voice, threads=args.threads)
    vits_load = time.perf_counter() - started
    if voice.info.format != "piper":
        raise SystemExit("the onnxruntime comparison needs a Piper .onnx voice")
    compiled_voice = None
    if args.compile:
        from torch._dynamo.utils import counters

        started = time.perf_counter()
        compiled_voice = Voice.load(args.voice, threads=args.threads, compile=True)
        compile_load = time.perf_counter() - started
        graphs_after_load = counters["stats"]["unique_graphs"]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    started = time.perf_counter()
    session = onnxruntime.InferenceSession(str(voice.info.model_path), options, providers=["CPUExecutionProvider"])
    ort_load = time.perf_counter() - started

    settings = voice.settings
    params = voice.resolve_params(SynthesisParams(seed=1234))
    scales = np.array([settings.noise_scale, settings.length_scale, settings.noise_w], dtype=np.float32)
    started = time.perf_counter()
    all_ids = [voice.phoneme_ids(s) for s in SENTENCES]
    front_end = time.perf_counter() - started

    def run_ort(ids: list[int]) -> int:
        out = session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            },
        )[0]
        return int(out.size)

    def run_vits(ids: list[int]) -> int:
        return len(voice.synthesize_ids([ids], params)[0])

    engines = [("vits", run_vits), ("onnxruntime", run_ort)]
    if compiled_voice is not None:
        compiled = compiled_voice

        def run_compiled(ids: list[int]) -> int:
            return len(compiled.synthesize_ids([ids], params)[0])

        started = time.perf_counter()
        run_compiled(all_ids[0])
        first_call = time.perf_counter() - started
        engines.insert(1, ("vits-compiled", run_compiled))
    for _, run in engines:  # warm-up, untimed
        run(all_ids[0])
    totals: dict[str, list[float]] = {name: [0.0, 0.0] for name, _ in engines}
    for round_index in range(args.rounds):
        # Whole passes per engine, order alternating by round (ABBA): runtimes keep their
        # worker threads spinning for a moment after a call, which would tax the other engine
        # if calls alternated sentence by sentence.
        for name, run in engines if round_index % 2 == 0 else engines[::-1]:
            for ids in all_ids:
                t = time.perf_counter()
                samples = run(ids)
                totals[name][0] += time.perf_counter() - t
                totals[name][1] += samples

    rate = voice.sample_rate
    rtf = {name: seconds / (samples / rate) for name, (seconds, samples) in totals.items()}
    print(f"voice {voice.info.id}, threads {args.threads}, {len(SENTENCES)} sentences x {args.rounds} round(s)")
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, cpus {os.cpu_count()}")
    print(f"front end (phonemes, not in RTF): {front_end:.3f} s for {len(SENTENCES)} sentences")
    for name, _ in engines:
        spent, produced = totals[name]
        print(f"{name:13s} RTF {rtf[name]:.4f}  ({spent:.2f} s for {produced / rate:.1f} s of audio)")
    print(f"ratio vits/onnxruntime RTF: {rtf['vits'] / rtf['onnxruntime']:.3f}")
    if compiled_voice is not None:
        print(f"ratio vits-compiled/onnxruntime RTF: {rtf['vits-compiled'] / rtf['onnxruntime']:.3f}")
        print(
            f"compiled: Voice.load(compile=True) {compile_load:.1f} s (compiles at load), first call "
            f"{first_call:.2f} s, graphs compiled after load: {counters['stats']['unique_graphs'] - graphs_after_load}"
        )
    if args.batch:
        t = time.perf_counter()
        audios = voice.synthesize_ids(all_ids, params)
        batch_s = time.perf_counter() - t
        audio_s = sum(a.duration_s for a in audios)
        print(f"vits batch of {len(all_ids)}: RTF {batch_s / audio_s:.4f} ({batch_s:.2f} s for {audio_s:.1f} s)")
    print(f"load: vits {vits_load:.2f} s (Voice.load), onnxruntime {ort_load:.2f} s (InferenceSession)")
    if not args.no_memory:
        memory = measure_memory(args.voice, args.threads)
        mib = 1024 * 1024
        print(
            f"memory of a process with a loaded vits voice (fresh process, torch imported: "
            f"{memory['rss_before_load'] / mib:.0f} MiB before load): "
            f"peak RSS {memory['peak_after_load'] / mib:.0f} MiB during load, "
            f"RSS {memory['rss_after_load'] / mib:.0f} MiB once loaded; "
            f"after one {len(SENTENCES[1])}-character sentence peak {memory['peak_after_synthesis'] / mib:.0f} MiB, "
            f"RSS {memory['rss_after_synthesis'] / mib:.0f} MiB"
        )


if __name__ == "__main__":
    main()
