"""`Voice`: a loaded VITS voice with the synthesis API the rest of the service builds on."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, cast

import numpy as np
import torch

from .audio import Audio
from .errors import EmptyTextError, InvalidTextError, UnspeakableTextError, VoiceLoadError, VoiceNotFoundError
from .loading.checkpoint import load_vits_model
from .loading.piper import load_piper_model
from .loading.settings import VoiceSettings
from .model import SynthesizerTrn
from .model.engine import RowEngine, choose_row_engine
from .model.runtime import release_free_memory, tune_allocator
from .model.winograd import ConvEngine, choose_conv_engine
from .parallel import WindowWorkers, default_decode_workers
from .params import SynthesisParams
from .streaming import DEFAULT_CHUNK_SECONDS, SentenceChunks
from .voices import DEFAULT_VOICE_ID, VoiceInfo, find_voice, info_from_paths, read_settings

if TYPE_CHECKING:
    from .text import Phonemizer

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Warm-up lengths (frames) for compiled mode: one padded to COMPILED_MIN_FRAMES, one longer.
_COMPILE_WARMUP_FRAMES = (16, 400)

# A whole-sentence decode through SentenceChunks: one window per worker thread.
WHOLE_SENTENCE_CHUNK = 1 << 40
# On the CPU one sentence is decoded in windows of about this much audio, as the agent's chunks
# are: a window's activations stay in the CPU caches. On a 2-core Intel Xeon the windowed decode
# took 0.92-0.94 of one whole-sentence pass (bench/synthesis.py, chunked/whole), and vits went
# from 1.01 to 0.91 of onnxruntime per sentence at 1 thread. Joined, the windows equal the
# whole decode (model/window.py).
DECODE_WINDOW_SECONDS = 1.0

# Attention is quadratic in the id count; prepared sentences are far below this.
MAX_IDS_PER_SENTENCE = 4000


def _next_or_none(chunks: SentenceChunks) -> Audio | None:
    return next(chunks, None)


def _speakable(phonemes: str) -> bool:
    """True when the phoneme string holds a real sound, not only stress marks and punctuation."""
    return any(unicodedata.category(ch) in ("Ll", "Lu", "Lo") for ch in phonemes)


class Voice:
    """A voice loaded once and reused; thread-safe for concurrent `synthesize*` calls."""

    def __init__(
        self,
        info: VoiceInfo,
        settings: VoiceSettings,
        model: SynthesizerTrn,
        device: torch.device | None = None,
        workers: WindowWorkers | None = None,
    ) -> None:
        self.info = info
        self.settings = settings
        self.device = torch.device("cpu") if device is None else device
        self.model = model.to(self.device).eval()
        # The decoder's channels-last weight copies are plain tensors that `.to()` does not move.
        self.model.dec.prepare()
        self.workers = WindowWorkers(1) if workers is None else workers
        self.load_seconds = 0.0
        self._phonemizer_lock = threading.Lock()
        self._phonemizer: Phonemizer | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        name: str | os.PathLike[str] | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        voices_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        compile: bool = False,
        device: str | torch.device = "cpu",
        tune_malloc: bool = True,
        decode_workers: int | None = None,
        row_engine: RowEngine | Literal["auto"] = "auto",
        conv_engine: ConvEngine | Literal["auto"] = "auto",
    ) -> Voice:
        """Load a voice by id (default: en_US-joe-medium) or by model path.

        `voices_dir` is searched for ids besides the packaged voice. `threads` is the number of
        cores synthesis may use (default: torch's current intra-op thread count). They go to
        `decode_workers` threads that each decode their own window of a sentence (vits/parallel.py;
        default: one per core on the CPU, 1 with `compile` or on another device), each with
        `threads // decode_workers` intra-op threads: torch's intra-op count is set for the whole
        process (torch has one global pool). `compile` runs the
        flow and decoder through torch.compile and compiles them here, at load (tens of seconds;
        see README). `device` ("cpu", "cuda", "cuda:1", ...) holds the weights and every tensor
        of synthesis. `tune_malloc` raises glibc's trim/mmap thresholds (model/runtime.py).
        `row_engine` picks the library of the row path's matrix products on the CPU ("mkl" or
        "onednn"); "auto" picks by the CPU's kind (model/engine.py `automatic`), on any
        device. `conv_engine` runs the decoder's residual convolutions by oneDNN ("onednn") or by
        the project's Winograd kernel ("winograd", model/winograd.py); "auto" takes Winograd where
        it builds and was measured faster on that kind of CPU (model/winograd.py `automatic`). Both choices hold
        for the whole process. On a CUDA device TF32 is turned off for the process's convolutions
        and matrix products (torch lets cuDNN use it by default): with it the audio strayed up to
        1e-2 from onnxruntime's on an H200, without it 3e-5 (scripts/gpu_check.sh).
        Raises VoiceNotFoundError for an unknown id or missing file, VoiceLoadError for a file
        that does not fit the model, ValueError for a bad thread count, worker count or device.
        """
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        try:
            target_device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from error
        cores = torch.get_num_threads() if threads is None else threads
        if decode_workers is None:
            decode_workers = 1 if compile else default_decode_workers(cores, target_device)
        workers = WindowWorkers(decode_workers)  # validates the count
        if threads is not None or decode_workers > 1:
            torch.set_num_threads(max(1, cores // decode_workers))
        if tune_malloc:
            tune_allocator()
        if target_device.type == "cuda":
            # TF32 keeps 10 mantissa bits: it made the decoder miss the reference by 1e-2.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        choose_row_engine(row_engine)  # validated on every device; it rules the CPU tensors
        choose_conv_engine(conv_engine)  # at the intra-op count set above
        started = time.perf_counter()
        target = DEFAULT_VOICE_ID if name is None else os.fspath(name)
        path = Path(target)
        if path.suffix in (".onnx", ".pth", ".pt") or path.is_file():
            if not path.is_file():
                raise VoiceNotFoundError(f"voice model file {path} does not exist")
            info = info_from_paths(path, config_path)
        else:
            info = find_voice(target, voices_dir)
        settings = read_settings(info.model_path, info.config_path)
        if info.format == "piper":
            model = load_piper_model(info.model_path, n_speakers=settings.num_speakers)
        else:
            model = load_vits_model(info.model_path, settings)
        if settings.num_speakers > 1 and model.emb_g is None:
            raise VoiceLoadError(f"config says {settings.num_speakers} speakers but tensor 'emb_g.weight' is missing")
        voice = cls(info, settings, model, target_device, workers)
        if compile:
            voice._compile()
        release_free_memory()
        voice.load_seconds = time.perf_counter() - started
        logger.info("Loaded voice %s in %.2f s", info.id, voice.load_seconds)
        return voice

    def _compile(self) -> None:
        """Enable torch.compile and compile now: padded short inputs and longer ones (3 graphs)."""
        started = time.perf_counter()
        model = self.model
        model.enable_compile()
        with torch.inference_mode():
            for frames in _COMPILE_WARMUP_FRAMES:
                z_p = torch.zeros(1, model.config.inter_channels, frames, device=self.device)
                g = None
                if model.emb_g is not None:
                    g = model.emb_g(torch.zeros(1, dtype=torch.long, device=self.device)).unsqueeze(-1)
                model.decode(z_p, torch.ones(1, 1, frames, device=self.device), g=g)
        logger.info("Compiled voice %s in %.1f s", self.info.id, time.perf_counter() - started)

    @property
    def sample_rate(self) -> int:
        return self.settings.sample_rate

    # ------------------------------------------------------------------ text
    def prepare(self, text: str) -> list[str]:
        """Validate, split and normalize raw text into sentences (vits.text.prepare_sentences)."""
        from .text import prepare_sentences

        if not isinstance(text, str):
            raise InvalidTextError(f"text must be a string, got {type(text).__name__}")
        return prepare_sentences(text)

    def phonemize(self, sentence: str) -> str:
        if self._phonemizer is None:
            with self._phonemizer_lock:
                if self._phonemizer is None:
                    from .text import Phonemizer

                    self._phonemizer = Phonemizer(self.settings.espeak_voice)
        return cast("Phonemizer", self._phonemizer).phonemize(sentence)

    def phoneme_ids(self, sentence: str) -> list[int]:
        """Ids of one prepared sentence, in the convention the voice was trained with."""
        if not isinstance(sentence, str) or not sentence.strip():
            raise EmptyTextError("The sentence is empty. Send some text to read.")
        from .text import validate_text

        # Cheap, and keeps control characters away from eSpeak when a caller skips prepare().
        validate_text(sentence)
        phonemes = self.phonemize(sentence)
        if not _speakable(phonemes):
            raise UnspeakableTextError(
                f"Nothing in {sentence[:60]!r} can be pronounced. Add words or numbers.", field="text"
            )
        id_map = self.settings.phoneme_id_map
        if self.settings.id_style == "piper":
            from .text import encode_phonemes

            ids = encode_phonemes(phonemes, id_map)
        else:
            symbols = [id_map[ch][0] for ch in unicodedata.normalize("NFC", phonemes) if ch in id_map]
            if self.settings.id_style == "interspersed":  # original VITS add_blank: 0 around every symbol
                ids = [0] * (2 * len(symbols) + 1)
                ids[1::2] = symbols
            else:
                ids = symbols
        if len(ids) > MAX_IDS_PER_SENTENCE:
            raise InvalidTextError(
                f"A sentence is too long to synthesize at once ({len(ids)} phoneme ids, at most "
                f"{MAX_IDS_PER_SENTENCE}). Split it into shorter sentences.",
                field="text",
            )
        return ids

    # ------------------------------------------------------------------ synthesis
    def resolve_params(self, params: SynthesisParams | None = None) -> SynthesisParams:
        """Validate (ParameterError / UnknownSpeakerError) and fill in the voice's defaults."""
        if params is None:
            params = SynthesisParams()
        if not isinstance(params, SynthesisParams):
            raise TypeError(f"params must be a SynthesisParams, got {type(params).__name__}")
        params.validate(num_speakers=self.settings.num_speakers)
        s = self.settings
        return SynthesisParams(
            length_scale=s.length_scale if params.length_scale is None else float(params.length_scale),
            noise_scale=s.noise_scale if params.noise_scale is None else float(params.noise_scale),
            noise_w=s.noise_w if params.noise_w is None else float(params.noise_w),
            speaker=0 if params.speaker is None else params.speaker,
            seed=params.seed,
        )

    def _model_inputs(
        self, batch_ids: Sequence[Sequence[int]], params: SynthesisParams
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, object]]:
        """Padded ids, lengths and the prior's keyword arguments, checked and on the voice's device."""
        if not batch_ids or any(len(ids) == 0 for ids in batch_ids):
            raise EmptyTextError("Nothing to synthesize: an id sequence is empty.")
        n_vocab = self.model.config.encoder.n_vocab
        if any(not 0 <= i < n_vocab for ids in batch_ids for i in ids):
            raise InvalidTextError(f"phoneme ids must be in 0..{n_vocab - 1}", field="text")
        lengths = torch.tensor([len(ids) for ids in batch_ids], dtype=torch.long)
        padded = torch.zeros(len(batch_ids), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(batch_ids):
            padded[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        generators = None
        if (params.noise_scale or 0) > 0 or (params.noise_w or 0) > 0:
            # One generator per item, all with the same seed: an item's audio does not depend on
            # its position in the text or the batch.
            seed = params.seed if params.seed is not None else secrets.randbits(31)
            generators = [torch.Generator().manual_seed(seed) for _ in batch_ids]
        speakers = None
        if self.model.emb_g is not None:
            speakers = torch.full((len(batch_ids),), int(params.speaker or 0), dtype=torch.long, device=self.device)
        kwargs: dict[str, object] = {
            "noise_scale": float(params.noise_scale or 0.0),
            "length_scale": float(params.length_scale or 1.0),
            "noise_w": float(params.noise_w or 0.0),
            "speakers": speakers,
            "generators": generators,
        }
        return padded.to(self.device), lengths.to(self.device), kwargs

    def synthesize_ids(self, batch_ids: Sequence[Sequence[int]], params: SynthesisParams) -> list[Audio]:
        """Audio of id sequences with resolved params: one sentence on the CPU in windows
        (`DECODE_WINDOW_SECONDS`, over the decode workers), otherwise one padded, masked pass."""
        if len(batch_ids) == 1 and self.device.type == "cpu" and not self.model.compiled:
            # In windows, spread over the worker threads when there are several.
            chunks = self.id_chunks(batch_ids[0], params, chunk_seconds=DECODE_WINDOW_SECONDS)
            return [Audio.concatenate(list(chunks))]
        padded, lengths, kwargs = self._model_inputs(batch_ids, params)
        with torch.inference_mode():
            audio, sample_lengths = self.model.infer(padded, lengths, **kwargs)  # type: ignore[arg-type]
        out = audio.cpu().numpy()
        return [
            Audio(np.array(out[row, : int(n)], dtype=np.float32), self.sample_rate)
            for row, n in enumerate(sample_lengths.tolist())
        ]

    def synthesize_sentence(self, sentence: str, params: SynthesisParams | None = None) -> Audio:
        """Synthesize one sentence that `prepare()` already produced (no splitting or normalizing)."""
        resolved = self.resolve_params(params)
        return self.synthesize_ids([self.phoneme_ids(sentence)], resolved)[0]

    def synthesize_batch(self, sentences: Sequence[str], params: SynthesisParams | None = None) -> list[Audio]:
        """Prepared sentences in one forward pass; each result equals its unbatched synthesis."""
        if isinstance(sentences, str):
            raise TypeError("synthesize_batch takes a list of sentences, not a string")
        if not sentences:
            return []
        resolved = self.resolve_params(params)
        return self.synthesize_ids([self.phoneme_ids(s) for s in sentences], resolved)

    def synthesize_sentences(self, text: str, params: SynthesisParams | None = None) -> Iterator[Audio]:
        """Yield one Audio per sentence of raw `text`. Input errors are raised before the first yield."""
        resolved = self.resolve_params(params)
        sentences = self.prepare(text)
        return self._iter_sentences(sentences, resolved)

    def _iter_sentences(self, sentences: list[str], params: SynthesisParams) -> Iterator[Audio]:
        for sentence in sentences:
            yield self.synthesize_ids([self.phoneme_ids(sentence)], params)[0]

    def synthesize(self, text: str, params: SynthesisParams | None = None) -> Audio:
        """Raw text to one Audio (sentences joined in order)."""
        return Audio.concatenate(list(self.synthesize_sentences(text, params)))

    def sentence_chunks(
        self,
        sentence: str,
        params: SynthesisParams | None = None,
        *,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        batch: int = 1,
        parallel: bool = True,
        first_chunk_early: bool = False,
    ) -> SentenceChunks:
        """The audio of one prepared sentence as an iterator of chunks of about `chunk_seconds`.

        Joined, the chunks equal `synthesize_sentence` (same params and seed). Input errors are
        raised here, before any model work. Each `next()` decodes one chunk; the caller may stop
        between chunks for as long as it likes and resume where it stopped (see README).
        `batch` > 1 decodes that many equal-size chunks in one pass and hands them out one by one.
        With `parallel` False the iterator decodes one window at a time on the calling thread,
        to be advanced beside other sentences' iterators by `next_chunks`.
        `first_chunk_early` runs the flow over the first window's frames alone before the first
        chunk and over the rest after it, when the iterator runs serially (vits/streaming.py):
        the first chunk sooner, samples equal within float rounding but not bit for bit.
        """
        return self.id_chunks(
            self.phoneme_ids(sentence),
            self.resolve_params(params),
            chunk_seconds=chunk_seconds,
            batch=batch,
            parallel=parallel,
            first_chunk_early=first_chunk_early,
        )

    @property
    def parallel_sentences(self) -> int:
        """How many sentences can be computed at once: one per decode worker thread, the caller's
        included (`submit` runs work on the others, `next_chunks` advances several at once)."""
        return self.workers.count

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Run `work` on one of the decode worker threads, beside the caller (`parallel_sentences` > 1).

        The agent computes the following sentences of a job this way while it steps the current one.
        """
        return self.workers.submit(work)

    def next_chunks(self, iterators: Sequence[SentenceChunks]) -> list[Audio | None]:
        """The next chunk of each iterator (None when it has none left), computed at once.

        Several serial iterators (`parallel=False`) run one per worker thread, each at intra-op 1:
        whole sentences side by side, text encoder included, which keeps every core busy where one
        sentence's encoder and durations would run on one core alone. A single iterator is
        switched to the workers' parallel windows for the rest of its sentence.
        """
        if len(iterators) == 1:
            iterators[0].use_workers(self.workers)
        results: list[Audio | None] = [None] * len(iterators)
        serial = [index for index, chunks in enumerate(iterators) if not chunks.parallel]
        audios = self.workers.map(_next_or_none, [iterators[index] for index in serial])
        for index, audio in zip(serial, audios, strict=True):
            results[index] = audio
        for index, chunks in enumerate(iterators):
            if chunks.parallel:  # it maps over the workers itself: on this thread, after the others
                results[index] = next(chunks, None)
        return results

    def id_chunks(
        self,
        ids: Sequence[int],
        params: SynthesisParams,
        *,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        batch: int = 1,
        chunk_frames: int | None = None,
        parallel: bool = True,
        first_chunk_early: bool = False,
    ) -> SentenceChunks:
        """`sentence_chunks` for the phoneme ids of one sentence and resolved params.

        `chunk_frames`, when given, replaces `chunk_seconds` (latent frames per chunk).
        """
        padded, lengths, kwargs = self._model_inputs([ids], params)
        return SentenceChunks(
            self.model,
            padded,
            lengths,
            kwargs,
            chunk_frames=self.chunk_frames(chunk_seconds) if chunk_frames is None else chunk_frames,
            sample_rate=self.sample_rate,
            batch=batch,
            workers=self.workers if parallel else None,
            first_chunk_early=first_chunk_early,
        )

    def chunk_frames(self, chunk_seconds: float) -> int:
        """Latent frames in a chunk of `chunk_seconds` of audio (at least one)."""
        if not (isinstance(chunk_seconds, (int, float)) and 0 < chunk_seconds <= 60):
            raise ValueError(f"chunk_seconds must be in (0, 60], got {chunk_seconds!r}")
        return max(1, round(chunk_seconds * self.sample_rate / self.model.hop_length))

    def __repr__(self) -> str:
        return f"Voice(id={self.info.id!r}, sample_rate={self.sample_rate}, format={self.info.format!r})"
