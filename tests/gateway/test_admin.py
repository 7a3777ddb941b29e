"""Admin: staff only, filters and search, the audio player, retry/cancel actions via services."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from gateway.models import JobStatus, OutboxMessage, SynthesisJob

from .factories import StaffFactory, SynthesisJobFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/gateway/synthesisjob/"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(StaffFactory())
    return client


def succeeded_job() -> SynthesisJob:
    job = SynthesisJobFactory(status=JobStatus.SUCCEEDED, progress=1.0, audio_duration_s=1.5)
    job.audio.save(f"{job.id}.wav", ContentFile(b"RIFF....WAVEfmt "), save=True)
    return job


def test_pages_load_for_staff(staff_client: Client) -> None:
    job = succeeded_job()
    SynthesisJobFactory(status=JobStatus.FAILED, text="needle in the text")
    for url in (
        CHANGELIST,
        f"{CHANGELIST}?status__exact=failed",
        f"{CHANGELIST}?length_class__exact=short&voice__exact=en_US-joe-medium",
        f"{CHANGELIST}?q=needle",
        f"{CHANGELIST}?queued_at__year=2026",
        reverse("admin:gateway_synthesisjob_change", args=[job.pk]),
        "/admin/gateway/outboxmessage/",
        "/admin/",
    ):
        assert staff_client.get(url).status_code == 200, url
    search = staff_client.get(f"{CHANGELIST}?q=needle")
    assert search.context["cl"].result_count == 1


def test_job_page_has_an_audio_player_served_to_staff_only(staff_client: Client) -> None:
    job = succeeded_job()
    page = staff_client.get(reverse("admin:gateway_synthesisjob_change", args=[job.pk])).content.decode()
    audio_url = reverse("admin:gateway_synthesisjob_audio", args=[job.pk])
    assert f'<audio controls preload="none" src="{audio_url}">' in page
    response = staff_client.get(audio_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert b"".join(response.streaming_content).startswith(b"RIFF")

    anonymous = Client().get(audio_url)
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    plain = Client()
    plain.force_login(UserFactory())
    assert plain.get(audio_url).status_code == 302  # not staff


def test_anonymous_and_non_staff_are_redirected_to_login() -> None:
    job = SynthesisJobFactory()
    for client in (Client(), _logged_in(UserFactory())):
        for url in (CHANGELIST, reverse("admin:gateway_synthesisjob_change", args=[job.pk])):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith("/admin/login/")


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_cancel_and_retry_actions_call_the_services(staff_client: Client) -> None:
    queued = SynthesisJobFactory(status=JobStatus.QUEUED)
    done = SynthesisJobFactory(status=JobStatus.SUCCEEDED)
    response = staff_client.post(
        CHANGELIST, {"action": "cancel_jobs", "_selected_action": [str(queued.pk), str(done.pk)]}, follow=True
    )
    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    assert any("Cancelled 1 job" in message for message in messages)
    assert any("Refused" in message for message in messages)  # the succeeded one
    assert SynthesisJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    assert SynthesisJob.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED

    staff_client.post(CHANGELIST, {"action": "retry_jobs", "_selected_action": [str(queued.pk)]})
    retried = SynthesisJob.objects.get(pk=queued.pk)
    assert retried.status == JobStatus.QUEUED
    assert retried.attempt == 2
    assert OutboxMessage.objects.filter(job=retried, attempt=2).count() == 1


def test_admin_cannot_add_or_edit_status(staff_client: Client) -> None:
    assert staff_client.get("/admin/gateway/synthesisjob/add/").status_code == 403
    job = SynthesisJobFactory(status=JobStatus.QUEUED)
    staff_client.post(reverse("admin:gateway_synthesisjob_change", args=[job.pk]), {"status": "succeeded"})
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_deleting_a_job_removes_its_audio_file(
    staff_client: Client, media_root: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = succeeded_job()
    assert len(list(media_root.rglob("*.wav"))) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [str(job.pk)], "post": "yes"}
        )
    assert response.status_code == 302
    assert SynthesisJob.objects.count() == 0
    assert list(media_root.rglob("*.wav")) == []


def test_failure_codes_and_event_dead_letters_are_visible_to_staff(staff_client: Client) -> None:
    from gateway.models import EventDeadLetter

    failed = SynthesisJobFactory(status=JobStatus.FAILED, error_code="storage_full", error="disk full")
    page = staff_client.get(reverse("admin:gateway_synthesisjob_change", args=[failed.pk])).content.decode()
    assert "storage_full" in page
    listing = staff_client.get(f"{CHANGELIST}?error_code__exact=storage_full")
    assert listing.context["cl"].result_count == 1

    record = EventDeadLetter.objects.create(
        event_type="segment", job_id=str(failed.id), attempt=1, payload=b'{"schema": 1}', error="IntegrityError: boom"
    )
    assert "IntegrityError: boom" in staff_client.get("/admin/gateway/eventdeadletter/").content.decode()
    detail = staff_client.get(reverse("admin:gateway_eventdeadletter_change", args=[record.pk]))
    assert detail.status_code == 200
    assert "{&quot;schema&quot;: 1}" in detail.content.decode()
