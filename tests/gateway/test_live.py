"""Live updates: notices over the real broker wake the streams of their job, and SSE/admin basics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from prometheus_client import REGISTRY

from gateway import live
from gateway.broadcast import Broadcaster
from gateway.models import JobStatus
from gateway.streaming import common

from .conftest import RecordingPublisher
from .factories import StaffFactory, SynthesisJobFactory, UserFactory, api_key_for


def test_a_notice_wakes_only_the_streams_of_its_job(
    settings: Any, pulsar_url: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PULSAR_URL = pulsar_url
    monkeypatch.setattr(live, "_announcer", Broadcaster(name="job-updates"))  # the real path
    hub = live.JobUpdateHub(service_url=pulsar_url, topic=live.updates_topic())

    before = REGISTRY.get_sample_value("tts_gateway_open_streams", {"kind": "events"}) or 0.0

    async def scenario() -> tuple[bool, bool]:
        with hub.watch("job-a") as woken, hub.watch("job-b") as other:
            assert await asyncio.to_thread(hub.ready.wait, 10)
            await asyncio.sleep(0.2)  # the listener wakes every stream once it is connected
            assert woken.is_set() and other.is_set()
            woken.clear()
            other.clear()
            assert hub.open_streams == 2
            assert REGISTRY.get_sample_value("tts_gateway_open_streams", {"kind": "events"}) == before + 2
            live.notify_job_update(job_id="job-a")
            got = await common.wait_for_change(woken, timeout_s=10)
            await asyncio.sleep(0.2)
            return got, other.is_set()

    try:
        woken, other_woken = asyncio.run(scenario())
    finally:
        hub.stop()
        live.close()
    assert woken and not other_woken
    assert hub.open_streams == 0
    assert REGISTRY.get_sample_value("tts_gateway_open_streams", {"kind": "events"}) == before


def test_while_coalescing_each_job_is_announced_once(broadcasts: RecordingPublisher) -> None:
    live.coalescing_start()
    try:
        for job_id in ("job-a", "job-b", "job-a"):
            live.notify_job_update(job_id=job_id)
    finally:
        live.coalescing_stop()
    live.notify_job_update(job_id="job-a")  # after: every notice goes out
    assert [json.loads(payload)["job_id"] for _, payload in broadcasts.sent] == ["job-a", "job-b", "job-a"]


@pytest.fixture
def no_listener_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No broker in these tests: the listener is not started, streams re-read on keep-alive.
    monkeypatch.setattr(live.JobUpdateHub, "start", lambda self: None)
    monkeypatch.setattr(common, "LISTENER_READY_WAIT_S", 0.05)
    yield
    common.close_db_connections()
    live._hub = None


async def _body(response: Any) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


@pytest.mark.django_db(transaction=True)  # the streams read on their own threads
def test_sse_of_a_final_job_sends_done_at_once(no_listener_wait: None) -> None:
    owner = UserFactory()
    key = api_key_for(owner)
    job = SynthesisJobFactory(owner=owner, status=JobStatus.FAILED, error="synthesis failed: boom")

    async def call() -> tuple[Any, bytes]:
        response = await AsyncClient().get(f"/api/v1/jobs/{job.id}/events", headers={"Authorization": f"Token {key}"})
        return response, await _body(response)

    response, body = async_to_sync(call)()
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    event, event_id, data = body.decode().strip().split("\n")
    assert event == "event: done" and event_id == "id: 1.done"
    payload = json.loads(data.removeprefix("data: "))
    assert payload["status"] == "failed" and payload["error"] == "synthesis failed: boom"


@pytest.mark.django_db(transaction=True)  # the streams read on their own threads
def test_sse_refuses_strangers_and_anonymous_callers(no_listener_wait: None) -> None:
    job = SynthesisJobFactory()
    stranger = api_key_for()

    async def call(headers: dict[str, str]) -> Any:
        return await AsyncClient().get(f"/api/v1/jobs/{job.id}/events", headers=headers)

    assert async_to_sync(call)({"Authorization": f"Token {stranger}"}).status_code == 404
    anonymous = async_to_sync(call)({})
    assert anonymous.status_code == 401 and json.loads(anonymous.content)["error"]["code"] == "not_authenticated"
    assert async_to_sync(call)({"Authorization": "Token wrong"}).status_code == 401


@pytest.mark.django_db
def test_admin_job_page_follows_the_event_stream() -> None:
    client = Client()
    client.force_login(StaffFactory())
    job = SynthesisJobFactory(status=JobStatus.RUNNING, sentences_done=2, sentence_count=5, progress=0.4)
    page = client.get(f"/admin/gateway/synthesisjob/{job.id}/change/").content.decode()
    assert f'data-events-url="/api/v1/jobs/{job.id}/events"' in page
    assert "gateway/job_live.js" in page


async def _first_chunks(iterator: Any, count: int) -> list[bytes]:
    chunks = []
    async for chunk in iterator:
        chunks.append(chunk)
        if len(chunks) == count:
            break
    await iterator.aclose()
    return chunks


@pytest.mark.django_db(transaction=True)
def test_a_quiet_stream_sends_keep_alives_and_last_event_id_skips_a_known_state(
    no_listener_wait: None, settings: Any
) -> None:
    from django.test import RequestFactory

    from gateway.streaming.sse import job_events

    settings.TTS_SSE_KEEPALIVE_S = 0.2
    job = SynthesisJobFactory(status=JobStatus.RUNNING, sentences_done=1, sentence_count=4, progress=0.25)
    request = RequestFactory().get(f"/api/v1/jobs/{job.id}/events")

    fresh = async_to_sync(_first_chunks)(job_events(job=job, request=request, last_event_id=None), 2)
    assert fresh[0].startswith(b"event: progress\nid: 1.1.running\n")
    assert json.loads(fresh[0].split(b"data: ")[1])["sentences_done"] == 1
    assert fresh[1] == b": keep-alive\n\n"

    resumed = async_to_sync(_first_chunks)(job_events(job=job, request=request, last_event_id="1.1.running"), 1)
    assert resumed == [b": keep-alive\n\n"]  # nothing changed since the client's last event


@pytest.mark.django_db(transaction=True)
def test_audio_stream_refuses_flac_and_a_failed_job(no_listener_wait: None) -> None:
    owner = UserFactory()
    key = api_key_for(owner)
    running = SynthesisJobFactory(owner=owner, status=JobStatus.RUNNING)
    failed = SynthesisJobFactory(owner=owner, status=JobStatus.FAILED)

    async def call(job_id: object, fmt: str) -> Any:
        return await AsyncClient().get(
            f"/api/v1/jobs/{job_id}/audio/stream?format={fmt}", headers={"Authorization": f"Bearer {key}"}
        )

    flac = async_to_sync(call)(running.id, "flac")
    assert flac.status_code == 400 and json.loads(flac.content)["error"]["supported"] == ["wav", "pcm", "mp3", "opus"]
    gone = async_to_sync(call)(failed.id, "wav")
    assert gone.status_code == 409 and json.loads(gone.content)["error"]["status"] == "failed"


def test_a_reconnected_listener_wakes_every_open_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.JobUpdateHub, "start", lambda self: None)
    hub = live.JobUpdateHub(service_url="pulsar://127.0.0.1:1", topic="unused")

    async def scenario() -> list[bool]:
        with hub.watch("a") as first, hub.watch("b") as second:
            hub.wake_all()
            await asyncio.sleep(0)  # let the loop run the scheduled sets
            return [first.is_set(), second.is_set()]

    assert asyncio.run(scenario()) == [True, True]
