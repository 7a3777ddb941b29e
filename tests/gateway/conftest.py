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

from gateway import consumer as consumer_module
from gateway.consumer import EventConsumer
from tts_contracts import EVENT_TYPES, JobEvent

from .factories import UserFactory, api_key_for

SAMPLE_RATE = 22050


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    """Audio files of every test go to its own tmpdir."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


class RecordingPublisher:
    """Stands in for the broker where a test does not run one: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(
        self, *, topic: str, payload: bytes, partition_key: str, respect_backoff: bool = False, **options: Any
    ) -> None:
        self.sent.append((topic, payload))

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def control_notices(monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    """`JobEnded` notices (best effort, after commit) go to a recorder, not to whatever broker
    happens to listen on the default address; a test of the real path restores the publisher."""
    from gateway.services import notices

    recorder = RecordingPublisher()
    monkeypatch.setattr(notices, "get_publisher", lambda: recorder)
    return recorder


@pytest.fixture(autouse=True)
def broadcasts(monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    """Results-topic messages and live notices (best effort, after commit) go to a recorder too;
    a test of the real path puts a `Broadcaster` back."""
    from gateway import live, results

    recorder = RecordingPublisher()
    monkeypatch.setattr(results, "_producer", recorder)
    monkeypatch.setattr(live, "_announcer", recorder)
    return recorder


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
    """Build typed events the way an agent does; `segment` and `preview` events carry real PCM."""
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
        fields: dict[str, Any]
        if type == "started":
            fields = {"sentence_count": job.sentence_count, "sample_rate": SAMPLE_RATE, "voice": job.voice}
        elif type == "segment":
            pcm = sine_pcm(seconds=0.25 * sentence_count, frequency=200 + 50 * first_sentence) if pcm is None else pcm
            fields = {
                "first_sentence": first_sentence,
                "sentence_count": sentence_count,
                "sample_rate": SAMPLE_RATE,
                "pcm": pcm,
            }
        elif type == "preview":
            pcm = sine_pcm(seconds=0.1, frequency=200) if pcm is None else pcm
            fields = {"sample_rate": SAMPLE_RATE, "pcm": pcm}
        elif type == "completed":
            fields = {
                "sentence_count": job.sentence_count,
                "segment_count": job.sentence_count,
                "sample_rate": SAMPLE_RATE,
                "synthesis_seconds": 0.5,
            }
        elif type == "heartbeat":
            fields = {"sentence_count": job.sentence_count or 0}
        else:
            fields = {"reason": "the voice failed to load", "error_type": "VoiceLoadError"}
        fields.update(data)
        return EVENT_TYPES[type](
            job_id=str(job.id),
            attempt=job.attempt if attempt is None else attempt,
            seq=next(sequence),
            agent_id=agent_id,
            sent_at=time.time(),
            **fields,
        )

    return build


@pytest.fixture
def topic_prefix(settings: Any) -> Iterator[str]:
    """Unique topic names per test on the shared broker."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings.TTS_TOPIC_PREFIX = prefix
    yield prefix


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> EventConsumer:
    """The event consumer's handling, without a broker, inside the test's transaction."""
    monkeypatch.setattr(consumer_module, "DB_ERROR_PAUSE_S", 0.0)
    monkeypatch.setattr(consumer_module, "close_old_connections", lambda: None)  # keep the test transaction
    monkeypatch.setattr(consumer_module.connections, "close_all", lambda: None)
    return EventConsumer(service_url="pulsar://unused:6650")
