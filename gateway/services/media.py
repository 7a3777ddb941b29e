"""The media sweep: audio files no job refers to (a transaction rolled back after the WAV was
written, a kill between write and commit, a deletion whose file removal failed, an encoding of
an older attempt or of a deleted job, a temporary file of an interrupted write) are removed; a
move into place that a crash interrupted after commit is completed."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.core.files.storage import default_storage

from .. import metrics
from ..models import SynthesisJob
from .audio import TEMP_SUFFIX, final_path_of
from .encodings import encoded_source

logger = logging.getLogger(__name__)

AUDIO_DIR = "audio"


def _referenced(name: str) -> bool:
    """A job's WAV, or an encoding of the attempt whose WAV a job holds now (older attempts'
    encodings were made from audio the job no longer has)."""
    source = encoded_source(name)
    if source is None:
        return SynthesisJob.objects.filter(audio=name).exists()
    wav_name, attempt = source
    return SynthesisJob.objects.filter(audio=wav_name, attempt=attempt).exists()


def media_sweep_orphans(*, older_than_s: float) -> int:
    """Remove orphan audio files older than `older_than_s` (younger ones may belong to a
    transaction still in flight); return how many were removed."""
    root = Path(default_storage.path(AUDIO_DIR))
    if not root.is_dir():
        return 0
    media_root = Path(default_storage.path(""))
    cutoff = time.time() - older_than_s
    removed = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.stat().st_mtime > cutoff:
            continue
        if path.name.endswith(TEMP_SUFFIX):
            final = Path(final_path_of(str(path)))
            name = final.relative_to(media_root).as_posix()
            if not final.exists() and SynthesisJob.objects.filter(audio=name).exists():
                os.replace(path, final)  # committed, but the move was cut short
                logger.warning("media sweep: completed the move of %s", name)
                continue
        elif _referenced(path.relative_to(media_root).as_posix()):
            continue
        path.unlink(missing_ok=True)
        removed += 1
        logger.info("media sweep: removed orphan %s", path)
    if removed:
        metrics.MEDIA_ORPHANS_REMOVED.inc(removed)
        logger.warning("media sweep: removed %d orphan audio file(s)", removed)
    return removed
