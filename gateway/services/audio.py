"""Assembling a job's WAV from the audio segments its agent sent, written atomically.

The WAV is written to a temporary name beside its final name and moved into place only after
the transaction that marks the job succeeded commits: a rolled-back transaction or a kill leaves
at most a `*.tmp` file, which the media sweep (`media.py`) removes, and a reader never sees a
partial WAV under a job's name. Needs a filesystem storage (`storage.path`).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
import uuid
import wave
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction

from ..models import AudioSegment, LengthClass, SynthesisJob
from .pcm import pcm_by_pk

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
# PCM read from the database per query when assembling a WAV: a short job's segments come in one
# query, a long job's in a few, and memory stays bounded (about 190 s of 22.05 kHz audio).
PCM_READ_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class SegmentChain:
    """The stored segments of one attempt that cover sentences 0 .. `covered` - 1, in order."""

    segments: list[AudioSegment]
    covered: int
    sample_rates: frozenset[int]

    def problem(self, *, expected: int) -> str | None:
        """Why the chain cannot become the job's audio, or None when it can."""
        if len(self.sample_rates) > 1:
            return f"segments disagree on the sample rate: {sorted(self.sample_rates)}"
        if not self.segments or self.covered != expected:
            return f"audio incomplete: {self.covered} of {expected} sentences received"
        return None


def segment_chain(*, job: SynthesisJob, attempt: int, expected: int) -> SegmentChain:
    """The stored segments of `attempt` that chain from sentence 0 (see `chain_of`).

    A short job's segments come with their PCM (a few seconds of audio, far below
    PCM_READ_BYTES): one query instead of two. Longer jobs' PCM is read in bounded runs.
    """
    segments_of = AudioSegment.objects.filter(job=job, attempt=attempt).order_by()
    if job.length_class != LengthClass.SHORT:
        segments_of = segments_of.defer("pcm")
    return chain_of(list(segments_of), expected=expected)


def chain_of(segments: Iterable[AudioSegment], *, expected: int) -> SegmentChain:
    """Walk 0 -> 0 + count -> ...: every sentence exactly once, in order, even if two deliveries
    cut their segments differently (a segment off the chain is left out)."""
    by_first = {segment.first_sentence: segment for segment in segments}
    chain: list[AudioSegment] = []
    covered = 0
    while covered in by_first and covered < expected:
        chain.append(by_first[covered])
        covered += by_first[covered].sentence_count
    return SegmentChain(
        segments=chain, covered=covered, sample_rates=frozenset(segment.sample_rate for segment in chain)
    )


@dataclass(frozen=True)
class StoredAudio:
    frames: int = 0
    error: str = ""  # the OSError that stopped the write (disk full...); nothing was left behind


def temp_name_for(final_path: str) -> str:
    """`<final>.<random>.tmp`: same folder (so the move is an atomic rename), never a job's name."""
    return f"{final_path}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"


def final_path_of(temp_path: str) -> str:
    return temp_path[: -len(TEMP_SUFFIX)].rsplit(".", 1)[0]


def job_audio_store(*, job: SynthesisJob, segments: list[AudioSegment], sample_rate: int) -> StoredAudio:
    """Write the WAV of `segments` (in order) to a temporary file and point `job.audio` (unsaved)
    at its final name; the move happens after commit. On an OSError (disk full, read-only
    storage) the temporary file is removed and the error returned, `job.audio` left unset."""
    field = job.audio.field
    storage = job.audio.storage
    name = field.generate_filename(job, f"{job.id}.wav")
    final_path = storage.path(name)
    temp_path = temp_name_for(final_path)
    try:
        os.makedirs(os.path.dirname(final_path), exist_ok=True)
        frames = _write_wav(temp_path, segments=segments, sample_rate=sample_rate)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temp_path)
        logger.error("job %s: writing %s failed: %s", job.id, temp_path, error)
        return StoredAudio(error=f"{type(error).__name__}: {error.strerror or error}")
    job.audio.name = name

    def move_into_place() -> None:
        os.replace(temp_path, final_path)

    # robust: a failed move is logged; the sweep completes it (the row names the final file).
    transaction.on_commit(move_into_place, robust=True)
    return StoredAudio(frames=frames)


# How long a reader waits for a committed file's move into place (see `stored_audio_open`).
MOVE_WAIT_S = 2.0


def stored_audio_open(*, storage: Storage, name: str) -> File:
    """Open a job's stored audio file (its WAV or an encoding) for reading; `name` is what the
    job's committed row names.

    The row names the file at commit, and the move into place runs after the commit's other
    on-commit work (a batch's segment publishes come first), so a client that saw the job end
    can ask a moment before the file is there. While its temporary file exists the move is
    pending: wait for it, at most MOVE_WAIT_S. A move still pending then, of a temporary file
    nobody wrote to during the wait, was cut short (the consumer was killed between its commit
    and the move): complete it here rather than fail until the media sweep's orphan age (an
    hour) has passed. A file that is simply missing raises at once.
    """
    began = time.time()
    deadline = time.monotonic() + MOVE_WAIT_S
    while True:
        try:
            return storage.open(name, "rb")
        except FileNotFoundError:
            pending = glob.glob(glob.escape(storage.path(name)) + ".*" + TEMP_SUFFIX)
            if not pending:
                return storage.open(name, "rb")  # moved meanwhile, or raises: truly missing
            if time.monotonic() > deadline:
                _complete_interrupted_move(pending, storage.path(name), written_before=began)
                return storage.open(name, "rb")
            time.sleep(0.02)


def _complete_interrupted_move(pending: list[str], final_path: str, *, written_before: float) -> None:
    """Move the newest temporary file last written before `written_before` into place (every
    complete temporary file of a job's name holds the audio of one application of its success;
    the newest is the committed one unless a later application rolled back). One written since
    may still be being written: left alone. Another reader or the woken consumer may win the race."""
    finished = [(mtime, path) for path in pending if (mtime := _mtime(path)) is not None and mtime < written_before]
    if not finished:
        return
    try:
        os.replace(max(finished)[1], final_path)
    except FileNotFoundError:
        return  # moved by someone else meanwhile
    logger.warning("completed the move of %s into place, cut short after its commit", final_path)


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None  # moved or removed meanwhile


def pcm_groups(segments: list[AudioSegment], *, max_bytes: int = PCM_READ_BYTES) -> list[list[AudioSegment]]:
    """Consecutive runs of `segments` whose PCM (estimated from `audio_seconds`) stays under
    `max_bytes`, at least one segment each: one query per run reads their PCM."""
    groups: list[list[AudioSegment]] = []
    size = 0
    for segment in segments:
        estimate = int(segment.audio_seconds * segment.sample_rate * 2)
        if not groups or (groups[-1] and size + estimate > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(segment)
        size += estimate
    return groups


def _write_wav(path: str, *, segments: list[AudioSegment], sample_rate: int) -> int:
    """PCM not read with the segments is read a bounded run of segments at a time (one query per
    run) so a long job's audio is never held in memory whole. Flushed to disk before it can be moved
    under the job's name. Returns the frame count."""
    frames = 0
    with open(path, "wb") as handle:
        with wave.open(handle, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            for group in pcm_groups(segments):
                unread = [segment.pk for segment in group if "pcm" in segment.get_deferred_fields()]
                read_pcm: dict[int, bytes] = {}
                if unread:  # a short job's segments came with their PCM (segment_chain)
                    read_pcm = pcm_by_pk(unread)
                for segment in group:
                    pcm = read_pcm.get(segment.pk)
                    if pcm is None:  # not `.get(pk, segment.pcm)`: that would load a deferred one
                        pcm = segment.pcm
                    wav.writeframes(bytes(pcm))
                    frames += len(pcm) // 2
        handle.flush()
        os.fsync(handle.fileno())
    return frames
