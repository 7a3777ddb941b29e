"""`Idempotency-Key` on POST /jobs and /jobs/batch: same key and body, same jobs; another body, 409."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.models import IdempotencyKey, OutboxMessage, SynthesisJob
from gateway.services import idempotency_keys_purge_expired

from .test_api_jobs import JOBS, assert_error

pytestmark = pytest.mark.django_db

BATCH = f"{JOBS}/batch"


def post(client: APIClient, path: str, body: dict, key: str | None) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, body, format="json", **headers)


def test_a_retry_with_the_same_key_and_body_returns_the_same_job(api_client: APIClient) -> None:
    body = {"text": "Say it once.", "params": {"seed": 3}}
    first = post(api_client, JOBS, body, "order-17")
    again = post(api_client, JOBS, body, "order-17")
    assert first.status_code == again.status_code == 202, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert SynthesisJob.objects.count() == 1
    assert OutboxMessage.objects.count() == 1  # nothing published twice either


def test_the_same_key_with_another_body_is_409(api_client: APIClient) -> None:
    post(api_client, JOBS, {"text": "First text."}, "k1")
    response = post(api_client, JOBS, {"text": "Another text."}, "k1")
    assert_error(response, status=409, field="Idempotency-Key", code="idempotency_key_reused")
    # The same key on the other endpoint is another request too.
    response = post(api_client, BATCH, {"jobs": [{"text": "First text."}]}, "k1")
    assert_error(response, status=409, field="Idempotency-Key", code="idempotency_key_reused")
    assert SynthesisJob.objects.count() == 1


def test_batch_replay_returns_the_same_jobs_in_order(api_client: APIClient) -> None:
    body = {"jobs": [{"text": "One."}, {"text": "Two."}, {"text": "Three."}]}
    first = post(api_client, BATCH, body, "batch-1")
    again = post(api_client, BATCH, body, "batch-1")
    assert first.status_code == again.status_code == 202
    ids = [job["id"] for job in first.json()["jobs"]]
    assert [job["id"] for job in again.json()["jobs"]] == ids
    assert SynthesisJob.objects.count() == 3


def test_keys_are_scoped_per_user(api_client: APIClient, other_client: APIClient) -> None:
    body = {"text": "Shared key, separate users."}
    mine = post(api_client, JOBS, body, "same-key")
    theirs = post(other_client, JOBS, body, "same-key")
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert IdempotencyKey.objects.count() == 2


def test_a_refused_request_stores_no_key_and_without_a_key_every_post_is_new(api_client: APIClient) -> None:
    assert_error(post(api_client, JOBS, {"text": ""}, "k-bad"), status=400, field="text")
    assert IdempotencyKey.objects.count() == 0
    assert post(api_client, JOBS, {"text": "Now valid."}, "k-bad").status_code == 202
    for _ in range(2):
        assert post(api_client, JOBS, {"text": "No key."}, None).status_code == 202
    assert SynthesisJob.objects.count() == 3


def test_an_oversized_key_is_refused(api_client: APIClient) -> None:
    response = post(api_client, JOBS, {"text": "Hi."}, "k" * 256)
    assert_error(response, status=400, field="Idempotency-Key", code="invalid_idempotency_key")


def test_an_expired_key_counts_as_new_and_a_fresh_one_still_replays(api_client: APIClient, settings: Any) -> None:
    settings.TTS_IDEMPOTENCY_KEY_TTL_HOURS = 24
    body = {"text": "Say it once."}
    first = post(api_client, JOBS, body, "order-18")
    IdempotencyKey.objects.filter(key="order-18").update(created_at=timezone.now() - timedelta(hours=23))
    assert post(api_client, JOBS, body, "order-18").json()["id"] == first.json()["id"]  # within the TTL
    IdempotencyKey.objects.filter(key="order-18").update(created_at=timezone.now() - timedelta(hours=25))
    # Past it, even another body is a new request, not a 409; the key now names the new job.
    again = post(api_client, JOBS, {"text": "Another text."}, "order-18")
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in again
    record = IdempotencyKey.objects.get(key="order-18")
    assert record.job_ids == [again.json()["id"]]
    assert SynthesisJob.objects.count() == 2


def test_purge_deletes_expired_keys_only_and_keeps_their_jobs(api_client: APIClient, settings: Any) -> None:
    settings.TTS_IDEMPOTENCY_KEY_TTL_HOURS = 24
    post(api_client, JOBS, {"text": "Old one."}, "old")
    post(api_client, JOBS, {"text": "New one."}, "new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))
    call_command("purge_expired", stdout=io.StringIO())
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert SynthesisJob.objects.count() == 2
    settings.TTS_IDEMPOTENCY_KEY_TTL_HOURS = 0  # keep forever
    IdempotencyKey.objects.filter(key="new").update(created_at=timezone.now() - timedelta(days=400))
    assert idempotency_keys_purge_expired() == 0
    assert post(api_client, JOBS, {"text": "New one."}, "new")["Idempotent-Replayed"] == "true"
