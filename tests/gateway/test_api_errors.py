"""Every API error is the JSON error body, a 500 included; a committed job always answers 202."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from gateway import services
from gateway.exception_handlers import api_server_error
from gateway.models import OutboxMessage, SynthesisJob
from gateway.services import outbox

from .test_api_jobs import JOBS, assert_error


@pytest.mark.django_db
def test_a_bug_in_a_view_answers_the_json_error_body(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(**kwargs: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(services, "job_submit", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.exception_handlers"):
        response = api_client.post(JOBS, {"text": "Hello."}, format="json")
    error = assert_error(response, status=500, field=None, code="server_error")
    assert "a bug" not in error["message"]  # internals stay in the log
    assert "internal error in POST /api/v1/jobs" in caplog.text
    assert "ZeroDivisionError: a bug" in caplog.text


def test_a_500_outside_drf_is_json_under_the_api_and_the_stock_page_elsewhere() -> None:
    factory = RequestFactory()
    api = api_server_error(factory.get("/api/v1/anything"))
    assert api.status_code == 500
    assert api["Content-Type"] == "application/json"
    assert b'"code": "server_error"' in api.content
    assert api_server_error(factory.get("/admin/")).status_code == 500


@pytest.mark.django_db(transaction=True)
def test_a_committed_job_is_202_even_when_the_publish_after_commit_raises(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def publish_crashes(**kwargs: Any) -> bool:
        raise RuntimeError("broker client exploded")

    monkeypatch.setattr(outbox, "_send_and_confirm", publish_crashes)
    with caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        response = api_client.post(JOBS, {"text": "Hello world."}, format="json")
    assert response.status_code == 202, response.content
    job = SynthesisJob.objects.get(pk=response.json()["id"])
    # The record waits for the relay; the failure was logged by name, not a crash of the logging.
    assert OutboxMessage.objects.get(job=job).published_at is None
    assert "publish_after_commit" in caplog.text
    assert "broker client exploded" in caplog.text


@pytest.mark.django_db
def test_an_unreachable_database_answers_503_with_retry_after(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    def database_down(**kwargs: Any) -> None:
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(services, "job_submit", database_down)
    response = api_client.post(JOBS, {"text": "Hello."}, format="json")
    assert_error(response, status=503, field=None, code="service_unavailable")
    assert response["Retry-After"] == "2"
