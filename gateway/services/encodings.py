"""Whole-file encodings of a job's audio (FLAC, MP3, Ogg Opus), stored once beside its WAV.

Named `<wav name without .wav>.a<attempt>.<ext>`; written like the WAV (`audio.py`): to a
temporary name in the same folder, then renamed, so a reader never opens a half-written file.
The media sweep (`media.py`) keeps an encoding while a job's current attempt names its WAV and
removes the others (old attempts, deleted jobs); `job_delete` removes them with the job, which
covers the retention purge.
"""

from __future__ import annotations

import contextlib
import logging
import os

import soundfile
from django.core.files.storage import Storage

from .. import formats
from ..formats import ENCODED_EXTENSIONS, encode_pcm
from ..models import SynthesisJob
from .audio import stored_audio_open, temp_name_for

logger = logging.getLogger(__name__)


def encoded_name(job: SynthesisJob, fmt: formats.AudioFormat) -> str:
    """`<wav name without .wav>.a<attempt>.<ext>`: beside the WAV, tied to the attempt it encodes."""
    base = job.audio.name.rsplit(".", 1)[0]
    return f"{base}.a{job.attempt}.{fmt.extension}"


def encoded_source(name: str) -> tuple[str, int] | None:
    """The WAV name and attempt an encoding's storage name belongs to, or None for another file."""
    stem, _, extension = name.rpartition(".")
    base, _, attempt = stem.rpartition(".a")
    if extension not in ENCODED_EXTENSIONS or not base or not attempt.isdigit():
        return None
    return f"{base}.wav", int(attempt)


def job_audio_encode(*, job: SynthesisJob, fmt: formats.AudioFormat) -> tuple[str, bool]:
    """The storage name of the job's audio in `fmt`, encoded now on first request, else reused.

    Returns (name, created). Written as the WAV is (`services.audio`): to a temporary name, then
    renamed, so a reader never opens a half-written encoding; two concurrent first requests
    both encode and the last rename wins with identical bytes. The media sweep keeps an
    encoding while its job's current attempt names the WAV; `services.job_delete` removes it.
    """
    if fmt.name in ("wav", "pcm"):  # the stored WAV itself, or its frames
        return job.audio.name, False
    storage = job.audio.storage
    name = encoded_name(job, fmt)
    if storage.exists(name):
        return name, False
    with stored_audio_open(storage=storage, name=job.audio.name) as handle, soundfile.SoundFile(handle) as wav:
        sample_rate = wav.samplerate
        pcm = wav.read(dtype="int16").tobytes()
    payload = encode_pcm(pcm, fmt=fmt, sample_rate=sample_rate)
    final_path = storage.path(name)
    temp_path = temp_name_for(final_path)
    try:
        with open(temp_path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, final_path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temp_path)
        raise
    logger.info("job %s audio encoded as %s (%d bytes) into %s", job.id, fmt.name, len(payload), name)
    return name, True


def encoded_delete(*, audio_name: str, storage: Storage) -> None:
    """Delete every stored encoding of the WAV `audio_name` (every attempt that wrote it there;
    encodings elsewhere are orphans the media sweep removes)."""
    folder = audio_name.rpartition("/")[0]
    try:
        _, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        path = f"{folder}/{name}" if folder else name
        source = encoded_source(path)
        if source is not None and source[0] == audio_name:
            storage.delete(path)
