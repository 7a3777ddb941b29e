"""Audio downloads through the project's ASGI handler: streamed block by block, never read whole."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
import wave
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.files.base import ContentFile

from gateway.models import JobStatus
from tts_project.asgi import SyncChainASGIHandler

from ..asgi_scope import http_scope
from .conftest import SAMPLE_RATE, sine_pcm
from .factories import SynthesisJobFactory, api_key_for

# 25 MB of audio (nine and a half minutes): read whole, the download would hold at least that much.
WAV_SECONDS = 570


def _wav_bytes(seconds: int) -> bytes:
    """A WAV written as the gateway writes it (`wave`: a 44-byte header) of a one-second tone
    repeated: no block boundary falls on a repeat, so a block sent out of place changes the bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(sine_pcm(seconds=1.0) * seconds)
    return buffer.getvalue()


def _asgi_request(
    path: str, *, query: str, key: str, method: str = "GET"
) -> tuple[int, dict[bytes, bytes], int, str, int]:
    """A GET (or `method`) through `SyncChainASGIHandler`; returns the status, headers, the body's length and
    SHA-256 (the body is not kept: it would count in the memory traced) and the peak of Python
    memory traced while the response was produced and sent."""
    scope = http_scope(
        path, query_string=query.encode(), headers=[(b"authorization", f"Bearer {key}".encode())], method=method
    )

    async def exchange() -> tuple[int, dict[bytes, bytes], int, str, int]:
        communicator = ApplicationCommunicator(SyncChainASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(timeout=30)
        digest, length = hashlib.sha256(), 0
        while True:
            message = await communicator.receive_output(timeout=30)
            digest.update(message.get("body", b""))
            length += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        peak = tracemalloc.get_traced_memory()[1]
        await communicator.wait(timeout=30)
        headers = {name.lower(): value for name, value in start["headers"]}
        return start["status"], headers, length, digest.hexdigest(), peak

    tracemalloc.start()
    try:
        return async_to_sync(exchange)()
    finally:
        tracemalloc.stop()


@pytest.fixture
def big_job(user: Any) -> tuple[Any, bytes]:
    wav = _wav_bytes(WAV_SECONDS)
    job = SynthesisJobFactory(owner=user, status=JobStatus.SUCCEEDED, sample_rate=SAMPLE_RATE)
    job.audio.save(f"{job.id}.wav", ContentFile(wav), save=True)
    return job, wav


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("query", "header_bytes"), [("", 0), ("format=pcm", 44)])
def test_a_large_wav_is_streamed_under_asgi_not_read_whole_first(
    big_job: tuple[Any, bytes], user: Any, query: str, header_bytes: int
) -> None:
    job, wav = big_job
    key = api_key_for(user)
    status, headers, length, digest, peak = _asgi_request(f"/api/v1/jobs/{job.id}/audio", query=query, key=key)
    assert status == 200
    assert (length, digest) == (len(wav) - header_bytes, hashlib.sha256(wav[header_bytes:]).hexdigest())
    assert int(headers[b"content-length"]) == len(wav) - header_bytes
    assert f'filename="{job.id}.'.encode() in headers[b"content-disposition"]
    # Django's default for a file body reads it all into a list first: the peak would exceed
    # the file's size (25 MB); block by block it stays near a few blocks.
    assert peak < len(wav) // 5, f"{peak / 1e6:.1f} MB traced for a {len(wav) / 1e6:.1f} MB file"


@pytest.mark.django_db(transaction=True)
def test_a_head_request_gets_the_downloads_headers_and_no_body(big_job: tuple[Any, bytes], user: Any) -> None:
    # uvicorn drops a HEAD response's body, but the handler must not read the file to produce
    # one: the body is only ever made by reading the file (StoredFileResponse.__aiter__).
    job, wav = big_job
    status, headers, length, _digest, _peak = _asgi_request(
        f"/api/v1/jobs/{job.id}/audio", query="", key=api_key_for(user), method="HEAD"
    )
    assert status == 200
    assert int(headers[b"content-length"]) == len(wav)
    assert f'filename="{job.id}.wav"'.encode() in headers[b"content-disposition"]
    assert length == 0, f"{length} bytes of body sent for a HEAD request"


@pytest.mark.django_db(transaction=True)
def test_a_download_stops_reading_when_the_client_goes_away(big_job: tuple[Any, bytes], user: Any) -> None:
    job, wav = big_job
    scope = http_scope(
        f"/api/v1/jobs/{job.id}/audio", headers=[(b"authorization", f"Bearer {api_key_for(user)}".encode())]
    )

    async def exchange() -> int:
        communicator = ApplicationCommunicator(SyncChainASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(timeout=30)
        assert start["status"] == 200
        first = await communicator.receive_output(timeout=30)
        assert first["more_body"]
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(timeout=30)  # the application returns: nothing left running
        sent = len(first["body"])
        while not communicator.output_queue.empty():
            sent += len((await communicator.receive_output()).get("body", b""))
        return sent

    sent = async_to_sync(exchange)()
    # Block by block (100 of 256 KB here), the read ends within a few blocks of the disconnect.
    assert sent < len(wav) // 4, f"{sent / 1e6:.1f} MB of {len(wav) / 1e6:.1f} MB sent after the client left"
