"""Audio formats: negotiation, incremental and whole-file encoding with libsndfile."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from django.core.files.base import ContentFile

from gateway import formats, services
from gateway.errors import ApplicationError
from gateway.models import JobStatus

from .conftest import SAMPLE_RATE, sine_pcm
from .factories import SynthesisJobFactory


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("flac", "audio/mpeg", "flac"),  # the query parameter wins
        (None, None, "wav"),
        (None, "audio/mpeg", "mp3"),
        (None, "audio/wav;q=0.4, audio/ogg;q=0.9", "opus"),
        (None, "application/json", "wav"),  # API clients sending their usual Accept
        (None, "*/*", "wav"),
        (None, "audio/aac, audio/L16;q=0.5", "pcm"),
        ("MP3", None, "mp3"),
    ],
)
def test_negotiate(query: str | None, accept: str | None, expected: str) -> None:
    assert formats.negotiate(query_format=query, accept=accept).name == expected


@pytest.mark.parametrize(("query", "accept", "field"), [("aac", None, "format"), (None, "audio/aac", "Accept")])
def test_unsupported_formats_are_a_400_listing_the_supported(query: str | None, accept: str | None, field: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        formats.negotiate(query_format=query, accept=accept)
    assert caught.value.status == 400 and caught.value.field == field
    assert caught.value.extra["supported"] == ["wav", "flac", "mp3", "opus", "pcm"]


def read_stream(body: bytes) -> tuple[np.ndarray, int]:
    """Decode block by block: a streamed FLAC does not know its length (libsndfile says "huge")."""
    with soundfile.SoundFile(io.BytesIO(body)) as audio:
        blocks = []
        while (block := audio.read(65536, dtype="int16")).size:
            blocks.append(block)
        return np.concatenate(blocks), audio.samplerate


@pytest.mark.parametrize("name", ["mp3", "opus"])
def test_stream_encoder_output_decodes_to_the_whole_audio(name: str) -> None:
    pcm = sine_pcm(seconds=0.5)
    encoder = formats.StreamEncoder(formats.FORMATS[name], sample_rate=SAMPLE_RATE)
    chunks = [encoder.feed(pcm) for _ in range(4)]
    chunks.append(encoder.finish())
    assert sum(1 for chunk in chunks[:-1] if chunk) >= 2  # bytes flow before the end
    samples, rate = read_stream(b"".join(chunks))
    assert rate == (24000 if name == "opus" else SAMPLE_RATE)
    # MP3 without a patched header keeps the encoder's delay and padding (about 90 ms here).
    assert abs(samples.size / rate - 2.0) < (0.12 if name == "mp3" else 0.05)


def test_flac_is_not_streamed_but_encoded_whole_losslessly() -> None:
    with pytest.raises(ApplicationError) as caught:
        formats.StreamEncoder(formats.FORMATS["flac"], sample_rate=SAMPLE_RATE)
    assert caught.value.extra["supported"] == ["wav", "pcm", "mp3", "opus"]
    pcm = sine_pcm(seconds=0.3)
    samples, rate = soundfile.read(
        io.BytesIO(formats.encode_pcm(pcm, fmt=formats.FORMATS["flac"], sample_rate=SAMPLE_RATE)), dtype="int16"
    )
    assert rate == SAMPLE_RATE and np.array_equal(samples, np.frombuffer(pcm, dtype="<i2"))


def test_streaming_wav_has_an_unknown_length_header_then_raw_frames() -> None:
    pcm = sine_pcm(seconds=0.1)
    encoder = formats.StreamEncoder(formats.FORMATS["wav"], sample_rate=SAMPLE_RATE)
    body = encoder.feed(pcm) + encoder.feed(pcm) + encoder.finish()
    assert body[:4] == b"RIFF" and body[8:16] == b"WAVEfmt " and body[36:40] == b"data"
    assert body[44:] == pcm + pcm


def test_resample_keeps_the_duration() -> None:
    samples = np.frombuffer(sine_pcm(seconds=1.0), dtype="<i2")
    out = formats.resample(samples, from_rate=22050, to_rate=24000)
    assert out.dtype == np.int16 and out.size == 24000


@pytest.mark.django_db(transaction=True)
def test_an_encoding_is_stored_once_and_deleted_with_its_job(media_root: Any) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.frombuffer(sine_pcm(seconds=0.5), dtype="<i2"), SAMPLE_RATE, "PCM_16", format="WAV")
    job = SynthesisJobFactory(status=JobStatus.SUCCEEDED, progress=1.0, sample_rate=SAMPLE_RATE)
    job.audio.save(f"{job.id}.wav", ContentFile(buffer.getvalue()), save=True)
    name, created = services.job_audio_encode(job=job, fmt=formats.FORMATS["mp3"])
    assert created and name.endswith(f"{job.id}.a1.mp3")
    assert services.job_audio_encode(job=job, fmt=formats.FORMATS["mp3"]) == (name, False)
    assert services.job_audio_encode(job=job, fmt=formats.FORMATS["wav"]) == (job.audio.name, False)
    services.job_delete(job=job)
    assert not list(Path(media_root).rglob(f"{job.id}*"))


@pytest.mark.django_db
def test_an_encoding_is_written_under_a_temporary_name_and_renamed(media_root: Path, monkeypatch: Any) -> None:
    from gateway.services import encodings

    buffer = io.BytesIO()
    soundfile.write(buffer, np.frombuffer(sine_pcm(seconds=0.2), dtype="<i2"), SAMPLE_RATE, "PCM_16", format="WAV")
    job = SynthesisJobFactory(status=JobStatus.SUCCEEDED, progress=1.0, sample_rate=SAMPLE_RATE)
    job.audio.save(f"{job.id}.wav", ContentFile(buffer.getvalue()), save=True)
    renames: list[tuple[str, str]] = []
    real_replace = encodings.os.replace
    monkeypatch.setattr(
        encodings.os, "replace", lambda source, target: (renames.append((source, target)), real_replace(source, target))
    )

    name, created = services.job_audio_encode(job=job, fmt=formats.FORMATS["opus"])
    ((source, target),) = renames
    assert created and target == job.audio.storage.path(name) and source.startswith(target) and source.endswith(".tmp")
    assert not list(Path(media_root).rglob("*.tmp"))
