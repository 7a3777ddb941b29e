"""The service end to end, as separate processes: gunicorn, event consumer, agents, broker.

Real Postgres, real Redis, the real pulsar-lite broker and the real pretrained voice. Each
test submits through the HTTP API and checks what a client gets back.
"""

from __future__ import annotations

import io
import re
import signal
import time
import urllib.request

import pytest
import soundfile

from devstack.stack import AgentSpec
from tests.stack_harness import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VOICE_SAMPLE_RATE = 22050


def metric_total(urls: list[str], name: str, **labels: str) -> float:
    """Sum of one metric's samples whose labels include `labels`, over several /metrics pages."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.eE+-]+)$")
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as response:
            page = response.read().decode()
        for line in page.splitlines():
            match = pattern.match(line)
            if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
                total += float(match.group(2))
    return total


def read_wav(data: bytes) -> tuple[soundfile._SoundFileInfo, float]:
    info = soundfile.info(io.BytesIO(data))
    return info, info.frames / info.samplerate


def test_submit_poll_and_download_a_wav(running_stack: RunningStack) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    started = time.monotonic()
    accepted = running_stack.api.submit(text)
    assert accepted["status"] == "queued"
    assert accepted["length_class"] == "short"
    job = running_stack.api.wait(accepted["id"], timeout_s=90)
    latency_s = time.monotonic() - started
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    audio = running_stack.api.audio(job["id"])
    info, duration_s = read_wav(audio)
    assert info.subtype == "PCM_16"
    assert info.channels == 1
    assert info.samplerate == VOICE_SAMPLE_RATE
    # Nine words read at a normal pace: between one and six seconds.
    assert 1.0 < duration_s < 6.0, duration_s
    assert job["audio"]["duration_s"] == pytest.approx(duration_s, abs=0.01)
    print(f"\none-sentence job: POST to audio ready {latency_s:.3f}s, synthesis {job['timings']['synthesis_s']}s")


def test_a_batch_completes_and_a_repeated_text_comes_from_the_cache(running_stack: RunningStack) -> None:
    repeated = "Caching makes repeated sentences free. Second sentence here."
    hits_before = metric_total(running_stack.agent_metrics_urls, "tts_agent_cache_requests_total", result="hit")
    batch = running_stack.api.json(
        "POST",
        "/api/v1/jobs/batch",
        {"jobs": [{"text": repeated}, {"text": "A different sentence in the same batch."}]},
        expect=202,
    )
    assert len(batch["jobs"]) == 2
    first_jobs = [running_stack.api.wait(job["id"], timeout_s=90) for job in batch["jobs"]]
    assert [job["status"] for job in first_jobs] == ["succeeded", "succeeded"]

    again = running_stack.api.submit_and_wait(repeated, timeout_s=90)
    assert again["status"] == "succeeded"
    assert again["sentence_count"] == 2
    assert again["audio"]["cached_sentences"] == 2
    hits_after = metric_total(running_stack.agent_metrics_urls, "tts_agent_cache_requests_total", result="hit")
    assert hits_after - hits_before >= 2


def test_another_users_job_is_not_found_and_anonymous_calls_are_refused(running_stack: RunningStack) -> None:
    job = running_stack.api.submit("Private words.")
    status, _, _ = running_stack.api.request("GET", f"/api/v1/jobs/{job['id']}")
    assert status == 200
    other_token = running_stack.stack._manage("create_api_token", "someone-else").strip().splitlines()[-1]
    stranger = type(running_stack.api)(running_stack.gateway_url, other_token)
    for path in (f"/api/v1/jobs/{job['id']}", f"/api/v1/jobs/{job['id']}/audio"):
        assert stranger.request("GET", path)[0] == 404
    anonymous = urllib.request.Request(running_stack.gateway_url + "/api/v1/jobs")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=5)
    assert refused.value.code == 401


def test_a_job_accepted_while_the_broker_is_down_completes_after_it_restarts(running_stack: RunningStack) -> None:
    broker = running_stack.stack.broker
    assert broker is not None, "the stack runs the embedded broker"
    broker.stop()
    try:
        accepted = running_stack.api.submit("Accepted while the broker was down.")
        assert accepted["status"] == "queued"
        time.sleep(2.0)
        assert running_stack.api.job(accepted["id"])["status"] == "queued"
    finally:
        broker.start()
    job = running_stack.api.wait(accepted["id"], timeout_s=120)
    assert job["status"] == "succeeded", job


def test_an_agent_killed_mid_job_leaves_it_to_another_that_completes_it_once(running_stack: RunningStack) -> None:
    stack = running_stack.stack
    spare = AgentSpec(classes=("medium",), name="agent-spare")
    stack.start_agent(spare)
    stack.wait_ready()
    sentences = [f"This is sentence number {n} of a medium sized text that keeps an agent busy." for n in range(24)]
    text = " ".join(sentences)
    params = {"seed": 7}
    job_id = running_stack.api.submit(text, params=params)["id"]
    deadline = time.monotonic() + 60
    while True:
        job = running_stack.api.job(job_id)
        if job["status"] == "running" and job["sentences_done"] >= 2:
            break
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, f"job did not start making progress: {job}"
        time.sleep(0.05)
    worker = job["agent_id"]
    assert worker in stack.processes, f"unknown agent {worker!r}"
    stack.signal_process(worker, signal.SIGKILL)
    stack.stop_process(worker)  # reaps it and drops its metrics port

    job = running_stack.api.wait(job_id, timeout_s=180)
    assert job["status"] == "succeeded", job
    assert job["sentence_count"] == len(sentences)
    assert job["agent_id"] != worker
    assert job["attempt"] == 1
    audio = running_stack.api.audio(job_id)

    # The same text and seed again is a pure cache replay: the audio must be the same, so the
    # rescued job holds every sentence once, in order.
    again = running_stack.api.submit_and_wait(text, params=params, timeout_s=120)
    assert again["audio"]["cached_sentences"] == len(sentences)
    assert running_stack.api.audio(again["id"]) == audio

    # Leave the stack as other tests expect it: the configured agents, no spare.
    if worker != spare.label:
        stack.start_agent(next(spec for spec in stack.config.agents if spec.label == worker))
        stack.stop_process(spare.label)
