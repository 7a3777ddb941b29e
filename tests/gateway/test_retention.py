"""Retention: purge_expired deletes finished jobs past TTS_RETENTION_DAYS and their files, nothing else."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.models import AudioSegment, JobStatus, OutboxMessage, SynthesisJob
from gateway.retention import job_expires_at, start_retention_thread

from .factories import SynthesisJobFactory

pytestmark = pytest.mark.django_db


def _job(*, status: str, finished_days_ago: float | None, audio: bool = True, **kwargs: Any) -> SynthesisJob:
    now = timezone.now()
    finished = None if finished_days_ago is None else now - timedelta(days=finished_days_ago)
    job = SynthesisJobFactory(
        status=status, finished_at=finished, queued_at=(finished or now) - timedelta(minutes=1), **kwargs
    )
    if audio:
        job.audio.save(f"{job.id}.wav", ContentFile(b"RIFF....WAVE"), save=True)
    OutboxMessage.objects.create(job=job, topic="t", partition_key=str(job.id), payload="{}")
    AudioSegment.objects.create(job=job, attempt=1, first_sentence=0, sentence_count=1, sample_rate=22050, pcm=b"\0\0")
    return job


def test_purge_expired_deletes_expired_rows_and_files_and_nothing_else(
    settings: Any, media_root: Path, capsys: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.TTS_RETENTION_DAYS = 30
    expired = [
        _job(status=JobStatus.SUCCEEDED, finished_days_ago=31),
        _job(status=JobStatus.FAILED, finished_days_ago=45, audio=False),
        _job(status=JobStatus.CANCELLED, finished_days_ago=30.01),
    ]
    kept = [
        _job(status=JobStatus.SUCCEEDED, finished_days_ago=29),  # not yet
        _job(status=JobStatus.QUEUED, finished_days_ago=None),  # never finished: never expires
        _job(status=JobStatus.RUNNING, finished_days_ago=None),
    ]
    old_running = _job(status=JobStatus.RUNNING, finished_days_ago=None)
    SynthesisJob.objects.filter(pk=old_running.pk).update(queued_at=timezone.now() - timedelta(days=90))
    kept.append(old_running)
    unrelated = media_root / "audio" / "not-a-job.wav"
    unrelated.write_bytes(b"keep me")
    expired_files = [Path(job.audio.path) for job in expired if job.audio]
    kept_files = [Path(job.audio.path) for job in kept]
    assert all(path.exists() for path in expired_files + kept_files)

    call_command("purge_expired", "--dry-run")
    assert "3 job(s) would be deleted" in capsys.readouterr().out
    assert SynthesisJob.objects.count() == 7

    with django_capture_on_commit_callbacks(execute=True):  # files go after the rows' commit
        call_command("purge_expired")
    assert "deleted 3 job(s)" in capsys.readouterr().out
    assert set(SynthesisJob.objects.values_list("pk", flat=True)) == {job.pk for job in kept}
    assert not any(path.exists() for path in expired_files)
    assert all(path.exists() for path in kept_files)
    assert unrelated.read_bytes() == b"keep me"
    assert OutboxMessage.objects.count() == AudioSegment.objects.count() == len(kept)

    call_command("purge_expired", "--days", "0")  # 0 keeps everything
    assert SynthesisJob.objects.count() == len(kept)


def test_the_api_shows_expires_at(api_client: APIClient, user: Any, settings: Any) -> None:
    settings.TTS_RETENTION_DAYS = 7
    done = _job(status=JobStatus.SUCCEEDED, finished_days_ago=1, owner=user)
    waiting = _job(status=JobStatus.QUEUED, finished_days_ago=None, owner=user, audio=False)
    shown = api_client.get(f"/api/v1/jobs/{done.id}").json()["expires_at"]
    assert shown == (done.finished_at + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert api_client.get(f"/api/v1/jobs/{waiting.id}").json()["expires_at"] is None
    assert job_expires_at(job=done, retention_days=0) is None


@pytest.mark.django_db(transaction=True)
def test_the_consumer_housekeeping_thread_purges(settings: Any) -> None:
    settings.TTS_RETENTION_DAYS = 1
    job = _job(status=JobStatus.SUCCEEDED, finished_days_ago=2)
    stop = threading.Event()
    thread = start_retention_thread(stop=stop, interval_s=0.2)
    assert thread is not None
    try:
        for _ in range(50):
            if not SynthesisJob.objects.filter(pk=job.pk).exists():
                break
            stop.wait(0.1)
        assert not SynthesisJob.objects.filter(pk=job.pk).exists()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert start_retention_thread(stop=stop, interval_s=0) is None
