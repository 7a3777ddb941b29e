"""The subscriptions Job's script, run as written in the manifest against the real embedded broker:
it subscribes the agents to every job topic, the dedicated voices' topics included."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import yaml

from devstack.broker import EmbeddedBroker
from tts_contracts import AGENT_SUBSCRIPTION, Topics, every_job_topic

from .manifests import DEPLOY, REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def job_script() -> str:
    job = yaml.safe_load((DEPLOY / "base" / "pulsar-subscriptions-job.yaml").read_text())
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    return command[2]


def test_the_job_subscribes_shared_and_voice_topics(pulsar_broker: EmbeddedBroker) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PULSAR_URL": pulsar_broker.url,
        "PULSAR_TENANT": "public",
        "PULSAR_NAMESPACE": "default",
        "TTS_TOPIC_PREFIX": prefix,
        "TTS_DEDICATED_VOICES": "en_GB-extra-medium",
    }
    result = subprocess.run(
        [sys.executable, "-c", job_script()], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ready = [line for line in result.stdout.splitlines() if line.endswith(": ready")]
    expected = every_job_topic(Topics(prefix=prefix), {"en_GB-extra-medium"})
    assert ready == [f"subscription {AGENT_SUBSCRIPTION} on {topic}: ready" for topic in expected]
    assert any(topic.endswith(f"{prefix}-jobs-long-en_GB-extra-medium") for topic in expected)
