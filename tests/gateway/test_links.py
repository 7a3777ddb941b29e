"""`gateway.links`: a job's URLs are what `build_absolute_uri(reverse(...))` gives, prefix and host included."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import DisallowedHost
from django.test import RequestFactory
from django.urls import reverse, set_script_prefix

from gateway.links import JOB_LINK_VIEWS, job_links, job_path


@pytest.mark.parametrize("script_prefix", ["/", "/speech/"])
@pytest.mark.parametrize("secure", [False, True])
def test_links_are_the_reversed_urls(settings: Any, script_prefix: str, secure: bool) -> None:
    settings.ALLOWED_HOSTS = ["tts.example.com"]
    job_id = uuid.uuid4()
    request = RequestFactory().get("/api/v1/jobs", HTTP_HOST="tts.example.com", secure=secure)
    set_script_prefix(script_prefix)
    try:
        expected = {
            name: request.build_absolute_uri(reverse(view, kwargs={"job_id": job_id}))
            for name, view in JOB_LINK_VIEWS.items()
        }
        assert job_links(job_id=job_id, request=request) == expected
        assert job_path("audio", job_id) == reverse("gateway:job-audio", kwargs={"job_id": job_id})
        # Another job right after: nothing of the first one is kept.
        other = uuid.uuid4()
        assert job_links(job_id=str(other), request=request)["self"].endswith(f"{script_prefix}api/v1/jobs/{other}")
    finally:
        set_script_prefix("/")
    scheme = "https" if secure else "http"
    assert expected["self"] == f"{scheme}://tts.example.com{script_prefix}api/v1/jobs/{job_id}"


def test_a_disallowed_host_is_still_refused(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["tts.example.com"]
    request = RequestFactory().get("/api/v1/jobs", HTTP_HOST="evil.example.org")
    with pytest.raises(DisallowedHost):
        job_links(job_id=uuid.uuid4(), request=request)
