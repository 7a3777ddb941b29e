"""Benchmark: PyTorch VITS (`vits`) against onnxruntime on the same Piper voice.

Both engines get the same phoneme ids, the same thread count and the voice's default noise
settings; sentences alternate between engines so background load hits both alike. Prints
real-time factors (synthesis seconds / audio seconds; lower is better), their ratio, model
load times and the peak resident memory of a process holding a loaded voice.

    .venv/bin/python bench/synthesis.py --threads 2
    .venv/bin/python bench/synthesis.py --threads 2 --compile  # also vits under torch.compile
    .venv/bin/python bench/synthesis.py --threads 1 --long-rounds 4  # long-text figure, 1 thread
    .venv/bin/python bench/synthesis.py --threads 2 --intra-op-too  # also vits at intra-op 2, 1 worker

vits runs the way `Voice.load(threads=N)` sets it up (by default N decoder windows at once, one
per thread at intra-op 1: vits/parallel.py); `--decode-workers` overrides that. `--intra-op-too`
adds, in the same alternation, the same model with one worker at intra-op N ("vits-intra-op").

The long-text figure runs one ~3,000-character text as one job through the agent's own pipeline
(`synthesis_agent.pipeline.run_job`, no cache: chunks of `--chunk-seconds`, and with several
decode workers the following sentences computed beside the current one) against onnxruntime
running the same voice sentence by sentence as Piper does. Both include the front end and the
PCM16 conversion; rounds alternate, and it prints `long-text ratio = R` (vits RTF / onnxruntime
RTF). `--chunk-batch N` adds vits decoding N equal-size chunks per pass, one sentence at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

# About 3,000 characters of ordinary prose: sentences of mixed length, as a long job brings them.
LONG_TEXT = (
    "The harbour town woke slowly that winter morning, long before the sun had cleared the hills. "
    "Fishermen checked their nets by lantern light, and the baker on the corner opened his shutters "
    "to let the smell of fresh bread drift along the quay. "
    "Nobody expected the storm that the radio had promised the night before. "
    "The sky was clear, the sea was flat, and the gulls were arguing over the scraps behind the market hall. "
    "At the end of the pier, an old woman sat on a folding chair with a flask of tea and a notebook on her knees. "
    "She had come to the same spot every morning for thirty years, writing down the names of the boats "
    "that left and the hours at which they returned. "
    "Her grandson once asked her why she did it, and she told him that somebody had to remember. "
    "By nine o'clock the first ferry arrived from the island, carrying a school class, two tractors "
    "and a surprising number of dogs. "
    "The children ran straight to the ice cream stand, which was closed, of course, because it was January. "
    "Their teacher, a patient man with a red scarf, gathered them by the lifeboat station and began to explain "
    "how the volunteers trained, how quickly they could launch, and how many people they had rescued since "
    "the station opened. "
    "One girl wanted to know whether anyone had ever been rescued twice. "
    "The teacher did not know, but the coxswain, who was painting a railing nearby, laughed and said that "
    "one stubborn sailor had been pulled out of the water three times in the same summer. "
    "Around noon the wind turned, quietly at first, then with a steady pressure that made the flags stand out "
    "straight from their poles. "
    "The fishermen looked at each other and began to bring their boats in early. "
    "Clouds gathered over the western headland, dark and heavy, and the light took on the yellow tint that "
    "sailors have always distrusted. "
    "In the café by the slipway, the owner switched on the radio again and turned up the volume. "
    "The forecast had changed: gusts of up to ninety kilometres an hour were expected by the evening, "
    "with high water at a quarter past seven. "
    "The school class was sent back to the ferry, which left twenty minutes ahead of schedule. "
    "By four in the afternoon the harbour was full, every boat tied twice, every hatch closed. "
    "The old woman folded her chair, put her notebook in her coat pocket and walked home along the sea wall, "
    "counting the boats one last time. "
    "All of them were in. "
    "That night the storm came as promised, rattling windows and throwing spray over the roofs of the houses "
    "closest to the water. "
    "In the morning the town found a few broken tiles, a fallen fence and a rowing boat in the middle of the "
    "car park, but nothing worse. "
    "The coxswain stopped by with two cups of coffee and asked whether she had counted the rowing boat as well. "
    "She said she had not, because it had arrived by land, and in her notebook only the sea was allowed to bring "
    "anything in. "
    "The old woman was back on the pier at seven, with her flask and her notebook, writing down the date."
)

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
    parser.add_argument("--long-rounds", type=int, default=2, help="rounds of the long-text figure (0 = skip)")
    parser.add_argument("--chunk-seconds", type=float, default=None, help="vits chunk size (default: vits default)")
    parser.add_argument("--chunk-batch", type=int, default=1, help="also time N equal-size chunks per pass (N > 1)")
    parser.add_argument("--device", default="cpu", help="torch device for vits (onnxruntime stays on the CPU)")
    parser.add_argument(
        "--decode-workers", type=int, default=None, help="vits windows decoded at once (default: Voice.load's)"
    )
    parser.add_argument(
        "--intra-op-too", action="store_true", help="also time vits with one worker at intra-op --threads"
    )
    parser.add_argument(
        "--row-engine",
        choices=("auto", "mkl", "onednn"),
        default="auto",
        help="vits' row products (Voice.load(row_engine=...); default: by the CPU's kind)",
    )
    parser.add_argument(
        "--conv-engine",
        choices=("auto", "onednn", "winograd"),
        default="auto",
        help="vits' residual convolutions (Voice.load(conv_engine=...); default: by the CPU, see winograd.automatic)",
    )
    args = parser.parse_args()

    from vits import SynthesisParams, Voice  # noqa: I001 - first: vits sets the OpenMP wait policy before torch loads

    import onnxruntime
    import torch

    started = time.perf_counter()
    voice = Voice.load(
        args.voice,
        threads=args.threads,
        device=args.device,
        decode_workers=args.decode_workers,
        row_engine=args.row_engine,
        conv_engine=args.conv_engine,
    )
    vits_load = time.perf_counter() - started
    intra_op = torch.get_num_threads()  # what Voice.load chose for its workers
    from vits.model.engine import row_engine
    from vits.model.winograd import conv_engine

    print(f"vits row engine: {row_engine()} (--row-engine {args.row_engine})", flush=True)
    print(f"vits conv engine: {conv_engine()} (--conv-engine {args.conv_engine})", flush=True)
    intra_voice = None
    if args.intra_op_too:  # the same model, one window at a time at intra-op --threads
        from vits.parallel import WindowWorkers

        intra_voice = Voice(voice.info, voice.settings, voice.model, voice.device, WindowWorkers(1))
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
        set_intra_op(intra_op)
        return len(voice.synthesize_ids([ids], params)[0])

    engines: list[tuple[str, Callable[[list[int]], int]]] = [("vits", run_vits), ("onnxruntime", run_ort)]
    if intra_voice is not None:
        engines.append(("vits-intra-op", intra_op_runner(intra_voice, params, args.threads)))
    if compiled_voice is not None:
        compiled = compiled_voice

        def run_compiled(ids: list[int]) -> int:
            return len(compiled.synthesize_ids([ids], params)[0])

        started = time.perf_counter()
        run_compiled(all_ids[0])
        first_call = time.perf_counter() - started
        engines.insert(1, ("vits-compiled", run_compiled))
    # Warm-up, untimed in the RTF: one pass over every sentence. oneDNN builds its kernels per
    # convolution shape on first use, so vits' first pass over new lengths is slower; an agent
    # pays that once per length (vits/__init__.py keeps the shapes cached). Printed below.
    cold: dict[str, float] = {}
    for name, run in engines:
        t = time.perf_counter()
        for ids in all_ids:
            run(ids)
        cold[name] = time.perf_counter() - t
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
    print(f"vits: {voice.workers.count} decode worker(s) at intra-op {intra_op}")
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, cpus {os.cpu_count()}")
    print(f"front end (phonemes, not in RTF): {front_end:.3f} s for {len(SENTENCES)} sentences")
    for name, _ in engines:
        spent, produced = totals[name]
        print(f"{name:13s} RTF {rtf[name]:.4f}  ({spent:.2f} s for {produced / rate:.1f} s of audio)")
    print(f"ratio vits/onnxruntime RTF: {rtf['vits'] / rtf['onnxruntime']:.3f}")
    print(
        "first (warm-up) pass, new lengths: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cold.items())
        + f"; cold/warm vits {cold['vits'] / (totals['vits'][0] / args.rounds):.2f}, "
        f"onnxruntime {cold['onnxruntime'] / (totals['onnxruntime'][0] / args.rounds):.2f}"
    )
    if intra_voice is not None:
        print(f"ratio vits-intra-op/onnxruntime RTF: {rtf['vits-intra-op'] / rtf['onnxruntime']:.3f}")
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
    if args.long_rounds > 0:
        set_intra_op(intra_op)
        long_text_figure(voice, session, scales, args, intra_op=intra_op)
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


def set_intra_op(threads: int) -> None:
    """Torch's intra-op thread count for this thread, changed only when it differs (it is cheap to ask)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def intra_op_runner(voice: Any, params: Any, threads: int) -> Callable[[list[int]], int]:
    """Whole-sentence vits with one worker at intra-op `threads` (the alternative to parallel windows)."""

    def run(ids: list[int]) -> int:
        set_intra_op(threads)
        return len(voice.synthesize_ids([ids], params)[0])

    return run


def agent_runner(voice: Any, chunk_seconds: float) -> Callable[[], int]:
    """The long text as one job through the agent's own pipeline (JobRun): prepare, phonemes,
    chunked synthesis, sentences computed side by side when the voice has several workers, PCM16
    segments. No cache: every sentence is synthesized. Returns the samples produced."""
    from synthesis_agent.cache import NullCache
    from synthesis_agent.outcomes import PipelineSettings
    from synthesis_agent.pipeline import run_job
    from tts_contracts import JobMessage, SegmentEvent

    settings = PipelineSettings(
        agent_id="bench", max_attempts=1, time_limit_s=3600.0, time_limit_rtf=1.0, chunk_seconds=chunk_seconds
    )
    payload = JobMessage(
        job_id="bench-long", attempt=1, text=LONG_TEXT, voice=voice.info.id, length_class="long", params={"seed": 1234}
    ).to_bytes()

    class OneVoice:
        def get(self, voice_id: str | None) -> Any:
            return voice

    def run() -> int:
        events, outcome = run_job(payload, voices=OneVoice(), cache=NullCache(), settings=settings, queue="long")
        if outcome.status != "succeeded":
            raise RuntimeError(f"the long job did not succeed: {outcome}")
        return sum(len(event.pcm) // 2 for event in events if isinstance(event, SegmentEvent))

    return run


def long_text_figure(
    voice: Any,
    session: Any,
    scales: np.ndarray,
    args: argparse.Namespace,
    *,
    intra_op: int,
) -> None:
    """The long-text figure (see the module docstring); prints `long-text ratio = R`."""
    from vits import SynthesisParams
    from vits.streaming import DEFAULT_CHUNK_SECONDS
    from vits.voice import WHOLE_SENTENCE_CHUNK

    chunk_seconds = args.chunk_seconds or DEFAULT_CHUNK_SECONDS
    sentences = voice.prepare(LONG_TEXT)

    def run_ort() -> int:
        # Piper's way: phonemes, one session run per sentence, PCM16 out.
        produced = 0
        for sentence in voice.prepare(LONG_TEXT):
            ids = voice.phoneme_ids(sentence)
            feeds = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            }
            audio = session.run(None, feeds)[0].reshape(-1)
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            produced += len(pcm) // 2
        return produced

    run_agent = agent_runner(voice, chunk_seconds)
    params = voice.resolve_params(SynthesisParams(seed=1234))
    all_ids = [voice.phoneme_ids(s) for s in sentences]

    def direct_runner(chunk_frames: int | None, batch: int) -> Callable[[], int]:
        def run() -> int:
            set_intra_op(intra_op)
            chunks = (
                voice.id_chunks(ids, params, chunk_seconds=chunk_seconds, chunk_frames=chunk_frames, batch=batch)
                for ids in all_ids
            )
            return sum(len(chunk) for sentence_chunks in chunks for chunk in sentence_chunks)

        return run

    engines: list[tuple[str, Callable[[], int]]] = [("vits-agent", run_agent), ("onnxruntime", run_ort)]
    if args.chunk_batch > 1:
        engines.append(("vits-batched", direct_runner(None, args.chunk_batch)))
    for _, run in engines:  # warm-up, untimed
        run()
    totals = {name: [0.0, 0.0] for name, _ in engines}
    for round_index in range(args.long_rounds):
        for name, run in engines if round_index % 2 == 0 else engines[::-1]:
            t = time.perf_counter()
            samples = run()
            totals[name][0] += time.perf_counter() - t
            totals[name][1] += samples
    # Whole-sentence decoding runs after the alternation: its large activations leave the heap
    # in a state that slowed the windowed decode after it by up to 15 % (measured), which would
    # tax whichever engine ran next. It runs twice: the first pass meets every sentence's length
    # for the first time, and oneDNN builds kernels per shape (what a service decoding whole
    # sentences pays, each sentence a new length); the second reuses them.
    whole = direct_runner(WHOLE_SENTENCE_CHUNK, 1)
    whole_rtf = []
    for _ in ("cold", "warm"):
        t = time.perf_counter()
        whole_samples = whole()
        whole_rtf.append((time.perf_counter() - t) / (whole_samples / voice.sample_rate))
    rate = voice.sample_rate
    rtf = {name: seconds / (samples / rate) for name, (seconds, samples) in totals.items()}
    print(
        f"long text: {len(LONG_TEXT)} characters, {len(sentences)} sentences, threads {args.threads}, "
        f"{args.long_rounds} round(s); vits as an agent runs a job: chunks of {chunk_seconds} s, "
        f"{voice.parallel_sentences} sentence(s) at once; front end and PCM16 included on both sides"
    )
    for name, _ in engines:
        spent, produced = totals[name]
        print(f"long {name:13s} RTF {rtf[name]:.4f}  ({spent:.2f} s for {produced / rate:.1f} s of audio)")
    cold, warm = whole_rtf
    print(
        f"long vits-whole     RTF {cold:.4f} cold, {warm:.4f} warm  "
        "(after the others: whole sentences, no chunks; cold = their lengths met for the first time)"
    )
    agent = rtf["vits-agent"]
    print(f"agent/whole vits RTF: {agent / cold:.3f} against cold, {agent / warm:.3f} against warm")
    print(f"long-text ratio = {rtf['vits-agent'] / rtf['onnxruntime']:.3f}")


if __name__ == "__main__":
    main()
