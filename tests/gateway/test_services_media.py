"""Audio is written atomically: a temporary file moved into place after commit, no partial WAV
when the disk is full (`storage_full`), and a sweep that removes what a crash left behind."""

from __future__ import annotations

import errno
import os
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from gateway import services
from gateway.models import JobStatus, SynthesisJob

from .conftest import EventFactory
from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def run_to_completion(job: SynthesisJob, make_event: EventFactory) -> str:
    services.job_apply_event(event=make_event("started", job))
    for index in range(job.sentence_count):
        services.job_apply_event(event=make_event("segment", job, first_sentence=index))
    return services.job_apply_event(event=make_event("completed", job))


def test_the_wav_reaches_its_name_only_when_the_transaction_commits(
    make_event: EventFactory, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert run_to_completion(job, make_event) == "applied"
    done = SynthesisJob.objects.get(pk=job.pk)
    final = Path(done.audio.path)
    (temp,) = files_under(media_root)
    assert not final.exists()  # not before the commit
    assert temp.name.startswith(final.name) and temp.name.endswith(".tmp")
    for callback in callbacks:
        callback()  # the commit
    assert files_under(media_root) == [final]
    with wave.open(str(final)) as wav:
        assert wav.getnframes() == int(done.audio_duration_s * wav.getframerate())


def test_a_full_disk_fails_the_job_with_storage_full_and_leaves_no_partial_file(
    make_event: EventFactory, media_root: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    written = []
    real_writeframes = wave.Wave_write.writeframes

    def disk_fills_up(self: wave.Wave_write, data: bytes) -> None:
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_writeframes(self, data)  # the first segment lands on disk, then the disk is full
        written.append(len(data))

    monkeypatch.setattr(wave.Wave_write, "writeframes", disk_fills_up)
    job = SynthesisJobFactory(sentence_count=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_to_completion(job, make_event) == "applied"
    failed = SynthesisJob.objects.get(pk=job.pk)
    assert written  # the write really started
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "storage_full")
    assert "No space left on device" in failed.error
    assert not failed.audio
    assert files_under(media_root) == []


def age(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_the_sweep_removes_orphans_keeps_job_audio_and_completes_a_cut_short_move(media_root: Path) -> None:
    day = media_root / "audio" / "2026" / "11" / "29"
    day.mkdir(parents=True)
    kept = SynthesisJobFactory(status=JobStatus.SUCCEEDED)
    kept.audio.name = "audio/2026/11/29/kept.wav"
    kept.save()
    (day / "kept.wav").write_bytes(b"RIFF")
    moved = SynthesisJobFactory(status=JobStatus.SUCCEEDED)
    moved.audio.name = "audio/2026/11/29/moved.wav"
    moved.save()
    cut_short = day / "moved.wav.0123456789ab.tmp"  # committed, killed before the move
    cut_short.write_bytes(b"RIFF-moved")
    orphans = [day / "rolled-back.wav.aaaaaaaaaaaa.tmp", day / "deleted-job.wav"]
    for path in orphans:
        path.write_bytes(b"RIFF")
    for path in [day / "kept.wav", cut_short, *orphans]:
        age(path, 7200)
    young = day / "in-flight.wav.bbbbbbbbbbbb.tmp"  # a transaction may still be writing it
    young.write_bytes(b"RIFF")

    assert services.media_sweep_orphans(older_than_s=3600) == 2
    assert files_under(media_root) == sorted([day / "kept.wav", day / "moved.wav", young])
    assert (day / "moved.wav").read_bytes() == b"RIFF-moved"

    age(young, 7200)
    call_command("sweep_media_orphans", "--older-than", "3600")
    assert not young.exists()


def test_the_sweep_keeps_the_encodings_of_a_jobs_current_attempt_only(media_root: Path) -> None:
    day = media_root / "audio" / "2026" / "11" / "29"
    day.mkdir(parents=True)
    job = SynthesisJobFactory(status=JobStatus.SUCCEEDED, attempt=2)
    job.audio.name = "audio/2026/11/29/job.wav"
    job.save()
    current = [day / "job.wav", day / "job.a2.mp3", day / "job.a2.opus"]
    older_attempt, gone_job = day / "job.a1.mp3", day / "deleted-job.a1.flac"
    interrupted = day / "job.a2.flac.cccccccccccc.tmp"  # an encoding write cut short
    for path in [*current, older_attempt, gone_job, interrupted]:
        path.write_bytes(b"audio")
        age(path, 7200)

    assert services.media_sweep_orphans(older_than_s=3600) == 3
    assert files_under(media_root) == sorted(current)


def test_a_reader_waits_for_a_committed_move_and_not_for_a_missing_file(media_root: Path) -> None:
    import threading

    from django.core.files.storage import default_storage

    day = media_root / "audio" / "2026" / "11" / "30"
    day.mkdir(parents=True)
    final = day / "job.wav"
    temp = day / "job.wav.0123456789ab.tmp"  # committed; the move runs after the batch's publishes
    temp.write_bytes(b"RIFF audio")
    mover = threading.Timer(0.2, os.replace, args=(temp, final))
    mover.start()
    name = str(final.relative_to(media_root))
    with services.stored_audio_open(storage=default_storage, name=name) as handle:
        assert handle.read() == b"RIFF audio"
    mover.join()

    began = time.monotonic()
    with pytest.raises(FileNotFoundError):
        services.stored_audio_open(storage=default_storage, name="audio/2026/11/30/missing.wav")
    assert time.monotonic() - began < 0.5  # no temporary file: nothing to wait for


def test_a_reader_completes_a_move_cut_short_after_its_commit(
    media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/chaos.py killed the consumer between a commit and its move: the job had succeeded,
    its row named the WAV, and the audio answered 500 until the hourly media sweep."""
    from django.core.files.storage import default_storage

    from gateway.services import audio

    monkeypatch.setattr(audio, "MOVE_WAIT_S", 0.1)
    day = media_root / "audio" / "2026" / "11" / "30"
    day.mkdir(parents=True)
    final = day / "job.wav"
    older = day / "job.wav.aaaaaaaaaaaa.tmp"  # a rolled-back application's leftover
    committed = day / "job.wav.bbbbbbbbbbbb.tmp"
    older.write_bytes(b"RIFF older")
    age(older, 60)
    committed.write_bytes(b"RIFF committed")
    name = str(final.relative_to(media_root))
    with services.stored_audio_open(storage=default_storage, name=name) as handle:
        assert handle.read() == b"RIFF committed"
    assert final.read_bytes() == b"RIFF committed" and not committed.exists()
    assert older.exists()  # the sweep removes it once it is an hour old

    being_written = day / "other.wav.cccccccccccc.tmp"  # written to during the wait: not complete
    being_written.write_bytes(b"RIFF par")
    age(being_written, -60)
    with pytest.raises(FileNotFoundError):
        services.stored_audio_open(storage=default_storage, name=str((day / "other.wav").relative_to(media_root)))
    assert being_written.exists() and not (day / "other.wav").exists()
