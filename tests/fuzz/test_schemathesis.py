"""Schemathesis against the live OpenAPI schema: no 5xx, every response as the schema says.

The gateway runs on loopback in this process (pytest-django's live server, real Postgres
and Redis); the broker is absent on purpose: jobs stay in the outbox, which is the path a
broker outage takes. A valid API key authenticates every generated request.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from gateway.apikeys import api_key_create
from gateway.models import JobStatus

from ..gateway.factories import SynthesisJobFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fuzz]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
MIN_REQUESTS = 1000
OPERATIONS = 9  # every operation of /api/v1 (jobs x2, batch, detail, audio, cancel, validate, voices, me)


@pytest.fixture
def fuzz_settings(settings: Any, tmp_path: Path) -> Any:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PULSAR_URL = "pulsar://127.0.0.1:9"  # nothing listens: the outbox keeps the jobs
    settings.TTS_PUBLISH_TIMEOUT_S = 0.5
    settings.TTS_PUBLISH_BACKOFF_S = 3600.0  # after the first refusal, submits skip the broker
    settings.TTS_QUOTA_MAX_ACTIVE_JOBS = 1_000_000  # the fuzzer should reach the 202 path
    settings.TTS_QUOTA_MAX_CHARS_PER_DAY = 1_000_000_000
    settings.TTS_MAX_TEXT_CHARS = 2000  # keeps generated texts (and phonemizing them) small
    return settings


def _succeeded_job_with_audio(owner: Any) -> Any:
    """A finished job, so that GET .../audio gets past 404 and returns a real WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        wav.writeframes(b"\0\0" * 2205)
    job = SynthesisJobFactory(owner=owner, status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    job.audio.save(f"{job.id}.wav", ContentFile(buffer.getvalue()), save=True)
    return job


def test_no_5xx_and_every_response_matches_the_schema(live_server: Any, fuzz_settings: Any, tmp_path: Path) -> None:
    fuzzer = UserFactory(username="fuzzer")
    _, raw_key = api_key_create(owner=fuzzer, name="schemathesis")
    job = _succeeded_job_with_audio(fuzzer)
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[[operations]]\ninclude-operation-id = "jobs_audio"\nparameters = {{ job_id = "{job.id}" }}\n')
    report = tmp_path / "report.json"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {raw_key}",
        "--max-examples",
        os.environ.get("TTS_FUZZ_MAX_EXAMPLES", "60"),
        "--seed",
        os.environ.get("TTS_FUZZ_SEED", "20261129"),
        # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11 can
        # break on when two threads parse at once ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    started = time.monotonic()
    # cwd: schemathesis keeps a cache folder in its working directory.
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    print(f"\n[schemathesis] {elapsed:.0f} s\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stdout[-6000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(
        f"[schemathesis] operations {summary['operations']['tested']}/{summary['operations']['total']}, "
        f"test cases {cases['generated']}, with failures {cases['with_failures']}, errored {cases['errored']}"
    )
    assert summary["operations"]["tested"] == summary["operations"]["total"] == OPERATIONS
    assert cases["generated"] >= MIN_REQUESTS
    assert cases["with_failures"] == cases["errored"] == 0
    assert summary["phases"]["coverage"]["status"] == summary["phases"]["fuzzing"]["status"] == "success"
