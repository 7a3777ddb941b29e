"""The jobs API: happy paths, every validation error (JSON naming the field, nothing written)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from gateway.apis import JobOutputSerializer
from gateway.models import AudioSegment, JobStatus, OutboxMessage, SynthesisJob

from .factories import StaffFactory, SynthesisJobFactory

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs"


def assert_nothing_written() -> None:
    assert SynthesisJob.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def assert_error(response: Any, *, status: int, field: str | None, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_submit_accepts_and_writes_job_and_outbox(api_client: APIClient, user: Any) -> None:
    response = api_client.post(JOBS, {"text": "Hello world. How are you today?"}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    job = SynthesisJob.objects.get()
    assert body["id"] == str(job.id)
    assert body["status"] == "queued"
    assert body["length_class"] == "short"
    assert response["Location"] == body["links"]["self"]
    assert body["links"]["audio"].endswith(f"/api/v1/jobs/{job.id}/audio")
    assert job.owner == user
    assert job.voice == "en_US-joe-medium"
    assert job.sentence_count == 2
    record = OutboxMessage.objects.get()
    assert record.job == job
    assert record.partition_key == str(job.id)
    assert record.topic == "persistent://public/default/tts-jobs-short"
    assert record.published_at is None  # published only after commit
    payload = json.loads(record.payload)
    assert payload["job_id"] == str(job.id)
    assert payload["attempt"] == 1
    assert payload["length_class"] == "short"


@pytest.mark.parametrize(
    ("chars", "length_class"),
    [(400, "short"), (401, "medium"), (4000, "medium"), (4001, "long")],
)
def test_length_class_thresholds(api_client: APIClient, chars: int, length_class: str) -> None:
    text = ("Hello there. " * 400)[: chars - 1] + "x"
    response = api_client.post(JOBS, {"text": text}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["length_class"] == length_class
    assert OutboxMessage.objects.get().topic.endswith(f"tts-jobs-{length_class}")


def test_fifo_scheduling_uses_the_fifo_topic(api_client: APIClient, settings: Any) -> None:
    settings.TTS_SCHEDULING = "fifo"
    response = api_client.post(JOBS, {"text": "Hello fifo world."}, format="json")
    assert response.status_code == 202
    assert OutboxMessage.objects.get().topic == "persistent://public/default/tts-jobs-fifo"
    assert json.loads(OutboxMessage.objects.get().payload)["length_class"] == "short"


def test_submit_with_params_and_voice(api_client: APIClient) -> None:
    response = api_client.post(
        JOBS,
        {"text": "Slow speech.", "voice": "en_US-joe-medium", "params": {"length_scale": 1.5, "seed": 7}},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert SynthesisJob.objects.get().params == {"length_scale": 1.5, "seed": 7}


@pytest.mark.parametrize(
    ("body", "status", "field", "code"),
    [
        ({}, 400, "text", "required"),
        ({"voice": "en_US-joe-medium"}, 400, "text", "required"),
        ({"text": ""}, 400, "text", "empty_text"),
        ({"text": "   \n\t "}, 400, "text", "empty_text"),
        ({"text": "🙂 🙂 !!!"}, 400, "text", "unspeakable_text"),
        ({"text": "Hello.", "voice": "xx_NOPE-none"}, 400, "voice", "unknown_voice"),
        ({"text": "Hello.", "params": {"length_scale": 9}}, 400, "params.length_scale", "invalid_parameter"),
        ({"text": "Hello.", "params": {"noise_scale": -1}}, 400, "params.noise_scale", "invalid_parameter"),
        ({"text": "Hello.", "params": {"noise_w": "loud"}}, 400, "params.noise_w", "invalid_parameter"),
        ({"text": "Hello.", "params": {"seed": -3}}, 400, "params.seed", "invalid_parameter"),
        ({"text": "Hello.", "params": {"speaker": 4}}, 400, "params.speaker", "unknown_speaker"),
        ({"text": "Hello.", "params": {"lenght_scale": 1}}, 400, "params.lenght_scale", "unknown_parameter"),
        ({"text": "Hello.", "params": [1, 2]}, 400, "params", None),
        ({"text": ["a list"]}, 400, "text", None),
    ],
)
def test_submit_validation_errors_write_nothing(
    api_client: APIClient, body: dict, status: int, field: str, code: str | None
) -> None:
    response = api_client.post(JOBS, body, format="json")
    assert_error(response, status=status, field=field, code=code)
    assert_nothing_written()


def test_oversized_text_is_413(api_client: APIClient, settings: Any) -> None:
    settings.TTS_MAX_TEXT_CHARS = 1000
    response = api_client.post(JOBS, {"text": "a" * 1001}, format="json")
    error = assert_error(response, status=413, field="text", code="text_too_long")
    assert "1000" in error["message"]
    assert_nothing_written()


def test_default_limit_is_100000_chars(api_client: APIClient) -> None:
    response = api_client.post(JOBS, {"text": "word " * 20001}, format="json")
    assert_error(response, status=413, field="text", code="text_too_long")
    assert_nothing_written()


def test_body_over_the_upload_limit_is_413(api_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api_client.post(JOBS, {"text": "word " * 5000}, format="json")
    assert_error(response, status=413, field="body", code="request_too_large")
    assert_nothing_written()


def test_malformed_json_is_400(api_client: APIClient) -> None:
    response = api_client.post(JOBS, data='{"text": "Hello', content_type="application/json")
    assert_error(response, status=400, field="body", code="parse_error")
    assert_nothing_written()


def test_wrong_content_type_is_415(api_client: APIClient) -> None:
    response = api_client.post(JOBS, data="text=Hello", content_type="application/x-www-form-urlencoded")
    assert_error(response, status=415, field="body", code="unsupported_media_type")
    assert_nothing_written()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", JOBS),
        ("post", JOBS),
        ("post", f"{JOBS}/batch"),
        ("get", f"{JOBS}/00000000-0000-0000-0000-000000000000"),
        ("get", f"{JOBS}/00000000-0000-0000-0000-000000000000/audio"),
        ("post", f"{JOBS}/00000000-0000-0000-0000-000000000000/cancel"),
        ("post", "/api/v1/validate"),
        ("get", "/api/v1/voices"),
    ],
)
def test_every_api_endpoint_needs_a_token(method: str, path: str) -> None:
    response = getattr(APIClient(), method)(path, {"text": "Hello."}, format="json")
    assert_error(response, status=401, field=None, code="not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert_nothing_written()


def test_bad_token_is_401(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get(JOBS)
    assert_error(response, status=401, field=None, code="authentication_failed")


def test_detail_shows_status_progress_timings_links(api_client: APIClient, user: Any) -> None:
    job = SynthesisJobFactory(owner=user, status=JobStatus.QUEUED)
    response = api_client.get(f"{JOBS}/{job.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(job.id)
    assert body["status"] == "queued"
    assert body["progress"] == 0.0
    assert set(body["timings"]) == {"queue_wait_s", "time_to_first_segment_s", "latency_s", "synthesis_s"}
    assert body["error"] == ""
    assert body["audio"] is None
    assert "text" not in body  # the text can be 100k characters; the list stays small


def test_unknown_and_foreign_jobs_are_404(api_client: APIClient, other_client: APIClient) -> None:
    job = SynthesisJobFactory()  # someone else's
    for path in (f"{JOBS}/{job.id}", f"{JOBS}/{job.id}/audio", f"{JOBS}/not-a-uuid", f"{JOBS}/{job.id}/cancel"):
        method = api_client.post if path.endswith("cancel") else api_client.get
        assert_error(method(path), status=404, field="id", code="not_found")
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_audio_is_409_until_succeeded(api_client: APIClient, user: Any) -> None:
    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED):
        job = SynthesisJobFactory(owner=user, status=status)
        response = api_client.get(f"{JOBS}/{job.id}/audio", HTTP_ACCEPT="audio/wav")
        error = assert_error(response, status=409, field="status", code="audio_not_ready")
        assert error["status"] == status


def test_list_own_jobs_paginated_and_filtered(api_client: APIClient, user: Any) -> None:
    SynthesisJobFactory.create_batch(3, owner=user, status=JobStatus.QUEUED)
    SynthesisJobFactory(owner=user, status=JobStatus.FAILED)
    SynthesisJobFactory()  # another user's
    body = api_client.get(JOBS).json()
    assert body["count"] == 4
    assert len(body["results"]) == 4
    failed = api_client.get(JOBS, {"status": "failed"}).json()
    assert failed["count"] == 1
    assert failed["results"][0]["status"] == "failed"
    page = api_client.get(JOBS, {"page_size": 2}).json()
    assert len(page["results"]) == 2
    assert page["next"]
    assert_error(api_client.get(JOBS, {"status": "bogus"}), status=400, field="status")


def test_cancel_then_cancel_again_is_409(api_client: APIClient, user: Any) -> None:
    job = SynthesisJobFactory(owner=user)
    response = api_client.post(f"{JOBS}/{job.id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    error = assert_error(api_client.post(f"{JOBS}/{job.id}/cancel"), status=409, field="status")
    assert error["code"] == "illegal_transition"
    assert AudioSegment.objects.count() == 0


def test_unknown_api_path_is_json_404(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/nothing-here")
    assert_error(response, status=404, field=None, code="not_found")


def test_method_not_allowed_is_json_405(api_client: APIClient, user: Any) -> None:
    job = SynthesisJobFactory(owner=user)
    assert_error(api_client.delete(f"{JOBS}/{job.id}"), status=405, field=None, code="method_not_allowed")


def test_detail_shows_the_failure_code_beside_the_reason(api_client: APIClient, user: Any) -> None:
    job = SynthesisJobFactory(owner=user, status=JobStatus.FAILED, error_code="stalled", error="synthesis stalled")
    body = api_client.get(f"{JOBS}/{job.id}").json()
    assert (body["status"], body["error_code"], body["error"]) == ("failed", "stalled", "synthesis stalled")


def _job_in(status: str) -> SynthesisJob:
    """A job as it stands in `status`, with the fields that status sets (and None where unset)."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "params": {"length_scale": 1.1, "seed": 7}}
    if status != JobStatus.QUEUED:
        fields.update(started_at=now, first_segment_at=now, agent_id="agent-1", sentences_done=1, progress=0.5)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        fields.update(finished_at=now + timedelta(seconds=1, microseconds=7))
    if status == JobStatus.SUCCEEDED:
        fields.update(progress=1.0, audio_duration_s=2.5, synthesis_seconds=0.4, cached_sentences=1)
    if status == JobStatus.FAILED:
        fields.update(error="the voice failed to load", error_code="synthesis_error")
    return SynthesisJobFactory(**fields)


@pytest.mark.parametrize("staff", [False, True])
@pytest.mark.parametrize("status", list(JobStatus))
def test_the_hand_written_output_is_the_model_serializers(status: str, staff: bool) -> None:
    """JobOutputSerializer.to_representation (the fast path) gives exactly what DRF's generic
    ModelSerializer.to_representation gives from the declared fields: keys, order, values, types."""
    job = SynthesisJob.objects.get(pk=_job_in(status).pk)  # as read from the database
    fresh = SynthesisJobFactory.build(owner=job.owner)  # as submit returns it: defaults, not yet read back
    request = Request(APIRequestFactory().get("/api/v1/jobs"))
    request.user = StaffFactory() if staff else job.owner
    for instance in (job, fresh):
        serializer = JobOutputSerializer(instance, context={"request": request})
        fast = serializer.to_representation(instance)
        generic = serializers.ModelSerializer.to_representation(serializer, instance)
        assert [(key, type(value), value) for key, value in fast.items()] == [
            (key, type(value), value) for key, value in generic.items()
        ]
        assert JSONRenderer().render(fast) == JSONRenderer().render(generic)
