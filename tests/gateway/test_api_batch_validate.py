"""Batch submit (all or nothing, capped), /validate (creates nothing) and /voices."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.models import OutboxMessage, SynthesisJob

from .test_api_jobs import assert_error, assert_nothing_written

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/jobs/batch"


def test_batch_creates_one_job_each(api_client: APIClient) -> None:
    items = [{"text": "First one."}, {"text": "Second. " * 80}, {"text": "Third.", "params": {"seed": 1}}]
    response = api_client.post(BATCH, {"jobs": items}, format="json")
    assert response.status_code == 202, response.content
    jobs = response.json()["jobs"]
    assert [job["length_class"] for job in jobs] == ["short", "medium", "short"]
    assert SynthesisJob.objects.count() == 3
    assert OutboxMessage.objects.count() == 3
    assert len({job["id"] for job in jobs}) == 3


@pytest.mark.parametrize(
    ("items", "status", "field"),
    [
        ([{"text": "Fine."}, {"text": ""}], 400, "jobs[1].text"),
        ([{"text": "Fine."}, {}], 400, "jobs[1].text"),
        ([{"text": "Fine."}, {"text": "Fine.", "voice": "nobody"}], 400, "jobs[1].voice"),
        ([{"text": "Fine.", "params": {"noise_w": 5}}], 400, "jobs[0].params.noise_w"),
        ([{"text": "Fine."}, "not an object"], 400, "jobs[1]"),
        ([], 400, "jobs"),
    ],
)
def test_batch_is_all_or_nothing(api_client: APIClient, items: list, status: int, field: str) -> None:
    response = api_client.post(BATCH, {"jobs": items}, format="json")
    assert_error(response, status=status, field=field)
    assert_nothing_written()


def test_batch_missing_jobs_field(api_client: APIClient) -> None:
    assert_error(api_client.post(BATCH, {"text": "x"}, format="json"), status=400, field="jobs", code="required")
    assert_nothing_written()


def test_batch_over_the_cap_is_413(api_client: APIClient, settings: Any) -> None:
    settings.TTS_MAX_BATCH = 3
    response = api_client.post(BATCH, {"jobs": [{"text": "Hi."}] * 4}, format="json")
    error = assert_error(response, status=413, field="jobs", code="batch_too_large")
    assert "3" in error["message"]
    assert_nothing_written()


def test_batch_over_the_total_character_cap_is_413(api_client: APIClient, settings: Any) -> None:
    settings.TTS_MAX_BATCH_CHARS = 100
    response = api_client.post(BATCH, {"jobs": [{"text": "Hello there. " * 4}] * 2}, format="json")
    error = assert_error(response, status=413, field="jobs", code="batch_too_large")
    assert "characters" in error["message"]
    assert_nothing_written()


def test_batch_item_oversized_text_is_413(api_client: APIClient, settings: Any) -> None:
    settings.TTS_MAX_TEXT_CHARS = 50
    response = api_client.post(BATCH, {"jobs": [{"text": "Hi."}, {"text": "a" * 51}]}, format="json")
    assert_error(response, status=413, field="jobs[1].text", code="text_too_long")
    assert_nothing_written()


def test_validate_returns_normalized_text_and_creates_nothing(api_client: APIClient) -> None:
    text = "Dr. Smith paid $3.50. Then he left!"
    response = api_client.post("/api/v1/validate", {"text": text, "params": {"length_scale": 2}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sentence_count"] == 2
    assert len(body["sentences"]) == 2
    assert "Doctor" in body["normalized_text"]
    assert "$" not in body["normalized_text"]
    assert body["length_class"] == "short"
    assert body["voice"] == "en_US-joe-medium"
    assert body["estimated_duration_s"] > 0
    one = api_client.post("/api/v1/validate", {"text": text}, format="json")
    # length_scale 2 speaks twice as slowly
    assert body["estimated_duration_s"] == pytest.approx(2 * one.json()["estimated_duration_s"], rel=0.01)
    assert_nothing_written()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"text": ""}, 400, "text"),
        ({"text": "Hi.", "voice": "nope"}, 400, "voice"),
        ({"text": "Hi.", "params": {"length_scale": 0}}, 400, "params.length_scale"),
    ],
)
def test_validate_errors(api_client: APIClient, body: dict, status: int, field: str) -> None:
    assert_error(api_client.post("/api/v1/validate", body, format="json"), status=status, field=field)
    assert_nothing_written()


def test_voices_lists_the_default_voice(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/voices")
    assert response.status_code == 200
    voices = {voice["id"]: voice for voice in response.json()}
    joe = voices["en_US-joe-medium"]
    assert joe["default"] is True
    assert joe["sample_rate"] == 22050
    assert joe["num_speakers"] == 1
    assert joe["language"]
    # FACTS.md: the sha256 of the packaged en_US-joe-medium .onnx file.
    assert joe["model_checksum"] == "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
