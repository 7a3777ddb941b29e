"""The async views (SSE, audio stream, OpenAI speech) on the API's keys, throttles, quotas,
idempotency, and the results/live hooks on typed events and stored error codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.test import AsyncClient
from django.utils import timezone

from gateway import live, results, services
from gateway.account_models import ApiKey
from gateway.apikeys import hash_key
from gateway.models import JobStatus, SynthesisJob
from gateway.streaming import common
from tts_contracts import SegmentEvent
from tts_contracts.results import decode_result

from .conftest import RecordingPublisher
from .factories import SynthesisJobFactory, UserFactory, api_key_for


@pytest.fixture
def no_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(live.JobUpdateHub, "start", lambda self: None)
    monkeypatch.setattr(common, "LISTENER_READY_WAIT_S", 0.05)
    yield
    common.close_db_connections()
    live._hub = None


def _get(path: str, key: str) -> Any:
    async def call() -> Any:
        return await AsyncClient().get(path, headers={"Authorization": f"Bearer {key}"})

    return async_to_sync(call)()


def _speech(key: str, body: dict[str, Any], **headers: str) -> Any:
    async def call() -> Any:
        return await AsyncClient().post(
            "/v1/audio/speech",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}", **headers},
        )

    return async_to_sync(call)()


@pytest.mark.django_db(transaction=True)
def test_streams_refuse_revoked_and_expired_keys_and_record_last_use(no_listener: None) -> None:
    owner = UserFactory()
    key = api_key_for(owner)
    job = SynthesisJobFactory(owner=owner, status=JobStatus.FAILED, error_code="synthesis_error")
    assert _get(f"/api/v1/jobs/{job.id}/events", key).status_code == 200
    assert ApiKey.objects.get(hashed_key=hash_key(key)).last_used_at is not None

    ApiKey.objects.filter(hashed_key=hash_key(key)).update(revoked_at=timezone.now())
    revoked = _get(f"/api/v1/jobs/{job.id}/events", key)
    assert revoked.status_code == 401 and json.loads(revoked.content)["error"]["code"] == "authentication_failed"
    expired = api_key_for(owner, expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(hashed_key=hash_key(expired)).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _get(f"/api/v1/jobs/{job.id}/audio/stream", expired).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_opening_streams_counts_in_the_read_throttle(no_listener: None, settings: Any) -> None:
    cache.clear()
    settings.TTS_THROTTLE_RATES = {"submit": "10/min", "validate": "10/min", "read": "2/min"}
    owner = UserFactory()
    key = api_key_for(owner)
    job = SynthesisJobFactory(owner=owner, status=JobStatus.CANCELLED, error_code="cancelled")
    try:
        assert _get(f"/api/v1/jobs/{job.id}/events", key).status_code == 200
        assert _get("/v1/models", key).status_code == 200
        refused = _get(f"/api/v1/jobs/{job.id}/events", key)
        other = _get(f"/api/v1/jobs/{job.id}/events", api_key_for())  # another user: own budget (404)
    finally:
        cache.clear()
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert json.loads(refused.content)["error"]["code"] == "throttled"
    assert other.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_speech_is_a_submission_throttle_quota_and_idempotency_key_apply(no_listener: None, settings: Any) -> None:
    cache.clear()
    settings.TTS_QUOTA_MAX_ACTIVE_JOBS = 1
    owner = UserFactory()
    key = api_key_for(owner)
    SynthesisJobFactory(owner=owner, status=JobStatus.QUEUED)  # the one active job the quota allows
    body = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}

    refused = _speech(key, body)
    assert refused.status_code == 429 and "Retry-After" not in refused
    error = json.loads(refused.content)["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "quota_active_jobs"
    assert SynthesisJob.objects.filter(owner=owner).count() == 1

    settings.TTS_QUOTA_MAX_ACTIVE_JOBS = 10
    SynthesisJob.objects.filter(owner=owner).update(status=JobStatus.CANCELLED)
    # flac answers once the job has ended: end it right after commit so the request returns.
    first = services.job_submit_idempotent(
        owner=owner,
        key="speech-1",
        endpoint="openai-speech",
        data={**body, "response_format": "flac"},
        submit=lambda: [services.job_submit(owner=owner, text=body["input"], voice="en_US-joe-medium")],
    )[0][0]
    services.job_cancel(job=first)
    replay = _speech(key, {**body, "response_format": "flac"}, **{"Idempotency-Key": "speech-1"})
    assert replay.status_code == 500 and json.loads(replay.content)["error"]["code"] == "cancelled"
    assert SynthesisJob.objects.filter(owner=owner).count() == 2  # no new job for the replay
    reused = _speech(key, {**body, "input": "Something else."}, **{"Idempotency-Key": "speech-1"})
    assert reused.status_code == 409 and json.loads(reused.content)["error"]["code"] == "idempotency_key_reused"

    settings.TTS_THROTTLE_RATES = {"submit": "0/min", "validate": "10/min", "read": "10/min"}
    try:
        throttled = _speech(key, body)
    finally:
        cache.clear()
    assert throttled.status_code == 429 and json.loads(throttled.content)["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_a_job_end_publishes_its_stored_error_code_and_wakes_streams_after_commit(monkeypatch: Any) -> None:
    producer, notices = RecordingPublisher(), []
    monkeypatch.setattr(results, "_producer", producer)
    monkeypatch.setattr(live, "notify_job_update", lambda *, job_id: notices.append(str(job_id)))
    job = services.job_submit(owner=UserFactory(), text="Hello there.", voice="en_US-joe-medium")

    services.job_cancel(job=job)
    (final,) = [decode_result(payload) for _, payload in producer.sent]
    assert final.status == "cancelled" and final.error_code == "cancelled" and notices == [str(job.id)]

    services.job_retry(job=job)  # streams of the old attempt end
    assert notices == [str(job.id)] * 2 and len(producer.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_event_applied_publishes_segments_of_typed_events(monkeypatch: Any, make_event: Any) -> None:
    producer, notices = RecordingPublisher(), []
    monkeypatch.setattr(results, "_producer", producer)
    monkeypatch.setattr(live, "notify_job_update", lambda *, job_id: notices.append(str(job_id)))
    job = SynthesisJobFactory(status=JobStatus.RUNNING, sentence_count=2)
    event = make_event("segment", job, first_sentence=0, sentence_count=1)
    assert isinstance(event, SegmentEvent)

    result = services.job_apply_event(event=event)
    results.event_applied(event=event, result=result)
    results.event_applied(event=event, result=services.job_apply_event(event=event))  # a redelivery

    segments = [decode_result(payload) for _, payload in producer.sent]
    assert [segment.first_sentence for segment in segments] == [0, 0] and segments[0].pcm == event.pcm
    assert notices == [str(job.id)]  # a duplicate changes nothing a stream would show


@pytest.mark.django_db(transaction=True)
def test_streams_answer_only_get_and_only_the_callers_own_jobs(no_listener: None) -> None:
    owner, other = UserFactory(), UserFactory()
    job = SynthesisJobFactory(owner=owner)
    key, other_key = api_key_for(owner), api_key_for(other)

    async def post(path: str) -> Any:
        return await AsyncClient().post(path, headers={"Authorization": f"Bearer {key}"})

    for path in (f"/api/v1/jobs/{job.pk}/events", f"/api/v1/jobs/{job.pk}/audio/stream"):
        refused = async_to_sync(post)(path)
        assert refused.status_code == 405 and refused.json()["error"]["code"] == "method_not_allowed", path
        hidden = _get(path, other_key)
        assert hidden.status_code == 404 and hidden.json()["error"]["field"] == "id", path
