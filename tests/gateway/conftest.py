"""Gateway fixtures: media in a tmpdir, API clients with tokens, PCM audio, event builders."""

from __future__ import annotations

import math
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from synthesis_agent.protocol import JobEvent, encode_pcm16

from .factories import UserFactory, api_key_for

SAMPLE_RATE = 22050


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    """Audio files of every test go to its own tmpdir."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def user(db: None) -> Any:
    return UserFactory()


@pytest.fixture
def api_client(user: Any) -> APIClient:
    """An API client authenticated with `user`'s token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    return client


@pytest.fixture
def other_client(db: None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for()}")
    return client


def sine_pcm(*, seconds: float, frequency: float = 220.0, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Real 16-bit little-endian mono PCM: a sine tone."""
    frames = int(seconds * sample_rate)
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / sample_rate))) for n in range(frames)
    )


EventFactory = Callable[..., JobEvent]


@pytest.fixture
def make_event() -> EventFactory:
    """Build JobEvent objects the way an agent does; `segment` events carry real PCM."""
    sequence = iter(range(10_000))

    def build(
        type: str,
        job: Any,
        *,
        attempt: int | None = None,
        agent_id: str = "agent-test",
        first_sentence: int = 0,
        sentence_count: int = 1,
        pcm: bytes | None = None,
        **data: Any,
    ) -> JobEvent:
        payload: dict[str, Any]
        if type == "started":
            payload = {"sentence_count": job.sentence_count, "sample_rate": SAMPLE_RATE, "voice": job.voice}
        elif type == "segment":
            pcm = sine_pcm(seconds=0.25 * sentence_count, frequency=200 + 50 * first_sentence) if pcm is None else pcm
            payload = {
                "first_sentence": first_sentence,
                "sentence_count": sentence_count,
                "sample_rate": SAMPLE_RATE,
                "audio_b64": encode_pcm16(pcm),
                "audio_seconds": len(pcm) / 2 / SAMPLE_RATE,
                "cached_sentences": 0,
            }
        elif type == "completed":
            payload = {
                "sentence_count": job.sentence_count,
                "segment_count": job.sentence_count,
                "sample_rate": SAMPLE_RATE,
                "synthesis_seconds": 0.5,
                "cached_sentences": 0,
            }
        else:
            payload = {"reason": "the voice failed to load", "error_type": "VoiceLoadError"}
        payload.update(data)
        return JobEvent(
            type=type,
            job_id=str(job.id),
            attempt=job.attempt if attempt is None else attempt,
            seq=next(sequence),
            agent_id=agent_id,
            sent_at=time.time(),
            data=payload,
        )

    return build


@pytest.fixture
def topic_prefix(settings: Any) -> Iterator[str]:
    """Unique topic names per test on the shared broker."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings.TTS_TOPIC_PREFIX = prefix
    yield prefix
