"""Every JSON body gets a 2xx or a 4xx naming the field: no number, type or size gives a 500."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.models import SynthesisJob

from .factories import StaffFactory, SynthesisJobFactory, api_key_for

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/jobs"
HUGE = 10**400  # float(HUGE) raises OverflowError


def _post(client: APIClient, path: str, body: Any) -> Any:
    response = client.post(path, body, format="json")
    assert response.status_code < 500, response.content
    return response


@pytest.mark.parametrize("name", ["length_scale", "noise_scale", "noise_w", "speaker", "seed"])
@pytest.mark.parametrize("value", [HUGE, -HUGE, 1e308, -1e308, "1.0", True, [], {}, -0.5])
@pytest.mark.parametrize("path", [JOBS, "/api/v1/validate"])
def test_every_parameter_rejects_out_of_range_and_wrong_types(
    api_client: APIClient, name: str, value: Any, path: str
) -> None:
    response = _post(api_client, path, {"text": "Hello.", "params": {name: value}})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == f"params.{name}"
    assert SynthesisJob.objects.count() == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_numbers_are_400(api_client: APIClient, literal: str) -> None:
    body = '{"text": "Hello.", "params": {"length_scale": ' + literal + "}}"
    response = api_client.post(JOBS, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert SynthesisJob.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": 12}, "text"),
        ({"text": 1.5}, "text"),
        ({"text": True}, "text"),
        ({"text": None}, "text"),
        ({"text": {"a": 1}}, "text"),
        ({"text": "Hello.", "voice": 3}, "voice"),
        ({"text": "Hello.", "params": "fast"}, "params"),
        ({"text": "Hello\u0000."}, "text"),
    ],
)
def test_wrong_json_types_are_400(api_client: APIClient, body: dict, field: str) -> None:
    response = _post(api_client, JOBS, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("body", [[], "text", 12, None, [{"text": "Hi."}]])
def test_a_body_that_is_not_an_object_is_400(api_client: APIClient, body: Any) -> None:
    for path in (JOBS, f"{JOBS}/batch", "/api/v1/validate"):
        response = _post(api_client, path, body)
        assert response.status_code == 400, (path, response.content)


def test_the_batch_cap_is_checked_before_the_items(api_client: APIClient, settings: Any) -> None:
    settings.TTS_MAX_BATCH = 3
    # Items that would each fail validation: the cap answers first, naming the batch.
    response = _post(api_client, f"{JOBS}/batch", {"jobs": [{"text": 12}] * 4})
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "batch_too_large",
        "message": "a batch holds at most 3 jobs, got 4",
        "field": "jobs",
    }


@pytest.mark.parametrize("jobs", [[], None, "x", [12], [[]]])
def test_batch_shape_errors_are_400(api_client: APIClient, jobs: Any) -> None:
    response = _post(api_client, f"{JOBS}/batch", {"jobs": jobs})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"].startswith("jobs")


def test_batch_item_errors_name_the_item(api_client: APIClient) -> None:
    response = _post(
        api_client, f"{JOBS}/batch", {"jobs": [{"text": "Fine."}, {"text": "Hi.", "params": {"seed": HUGE}}]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "jobs[1].params.seed"


@pytest.mark.parametrize("query", ["page=abc", "page=0", "page=999999", "page_size=-1", "status=nope", "page=1e400"])
def test_list_query_edges_are_4xx(api_client: APIClient, query: str) -> None:
    response = api_client.get(f"{JOBS}?{query}")
    assert response.status_code in (200, 400, 404), response.content


@pytest.mark.parametrize("job_id", ["x", "0" * 500, "%00", "../../etc/passwd"])
def test_odd_job_ids_are_404(api_client: APIClient, job_id: str) -> None:
    assert api_client.get(f"{JOBS}/{job_id}").status_code == 404


def test_agent_and_cache_details_only_for_staff(api_client: APIClient, user: Any) -> None:
    job = SynthesisJobFactory(owner=user, status="succeeded", agent_id="agent-7", cached_sentences=2)
    job.finished_at = job.queued_at
    job.save()
    mine = api_client.get(f"{JOBS}/{job.id}").json()
    assert mine["agent_id"] is None
    assert "cached_sentences" not in mine["audio"]

    staff = StaffFactory()
    staff_client = APIClient()
    staff_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(staff)}")
    staff_job = SynthesisJobFactory(owner=staff, status="succeeded", agent_id="agent-7", cached_sentences=2)
    theirs = staff_client.get(f"{JOBS}/{staff_job.id}").json()
    assert theirs["agent_id"] == "agent-7"
    assert theirs["audio"]["cached_sentences"] == 2
