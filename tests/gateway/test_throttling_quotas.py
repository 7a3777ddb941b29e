"""Rates per user in the shared Redis, and per-user quotas: 429s that name their reason."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from gateway import services
from gateway.account_models import UserQuota
from gateway.models import JobStatus, SynthesisJob
from gateway.throttling import parse_rate

from .factories import StaffFactory, SynthesisJobFactory, UserFactory, api_key_for

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/jobs"
ME = "/api/v1/me"


@pytest.fixture
def rates(settings: Any) -> dict[str, str]:
    cache.clear()  # this worktree's Redis database: counters of earlier runs must not count
    settings.TTS_THROTTLE_RATES = {"submit": "10/min", "validate": "3/min", "read": "1000/min"}
    yield settings.TTS_THROTTLE_RATES
    cache.clear()


def _client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(user)}")
    return client


def test_parse_rate() -> None:
    assert parse_rate("120/min") == (120, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("1000/day") == (1000, 86400)
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_burst_over_the_submit_limit_is_429_while_another_user_goes_through(rates: dict[str, str]) -> None:
    alice_user, bob_user = UserFactory(), UserFactory()
    alice, bob = _client_for(alice_user), _client_for(bob_user)
    limit, period = parse_rate(rates["submit"])
    started = time.monotonic()
    alice_status, bob_status, retry_after = [], [], []
    for n in range(limit + 5):
        response = alice.post(JOBS, {"text": f"Burst number {n}."}, format="json")
        alice_status.append(response.status_code)
        if response.status_code == 429:
            retry_after.append(int(response["Retry-After"]))
            assert response.json()["error"]["code"] == "throttled"
            assert "field" in response.json()["error"]
        if n >= limit:  # alice is over her limit now: bob, in the same second, is not slowed
            bob_status.append(alice_status and bob.post(JOBS, {"text": "Bob speaks."}, format="json").status_code)
    elapsed = time.monotonic() - started
    print(
        f"\n[throttle] submit limit {limit}/{period}s; alice sent {len(alice_status)}: "
        f"{alice_status.count(202)} accepted, {alice_status.count(429)} throttled "
        f"(Retry-After {sorted(set(retry_after))} s); "
        f"bob sent {len(bob_status)} meanwhile: {bob_status.count(202)} accepted; all within {elapsed:.2f} s"
    )
    assert alice_status == [202] * limit + [429] * 5
    assert bob_status == [202] * 5
    # At most one period and a tenth: early in a window the full window must first become the
    # previous one, then shrink by 1/limit (throttling.retry_after); the test may run at any second.
    assert all(1 <= seconds <= math.ceil(period * (1 + 1 / limit)) for seconds in retry_after)
    assert SynthesisJob.objects.filter(owner__in=[alice_user, bob_user]).count() == limit + 5


def test_a_batch_counts_one_per_job(rates: dict[str, str]) -> None:
    client = _client_for(UserFactory())
    accepted = client.post(f"{JOBS}/batch", {"jobs": [{"text": f"Item {n}."} for n in range(8)]}, format="json")
    assert accepted.status_code == 202
    refused = client.post(
        f"{JOBS}/batch", {"jobs": [{"text": "One."}, {"text": "Two."}, {"text": "Three."}]}, format="json"
    )
    assert refused.status_code == 429
    assert refused.has_header("Retry-After")
    # Denied units are not consumed: the two left still fit.
    assert (
        client.post(f"{JOBS}/batch", {"jobs": [{"text": "One."}, {"text": "Two."}]}, format="json").status_code == 202
    )


def test_validate_and_reads_have_their_own_buckets(rates: dict[str, str]) -> None:
    client = _client_for(UserFactory())
    codes = [client.post("/api/v1/validate", {"text": "Hi."}, format="json").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.get(JOBS).status_code == 200  # reads are not validate
    assert client.post(JOBS, {"text": "Hi."}, format="json").status_code == 202  # nor submits


def test_quota_of_active_jobs_frees_up_as_jobs_finish(settings: Any) -> None:
    settings.TTS_QUOTA_MAX_ACTIVE_JOBS = 2
    user = UserFactory()
    client = _client_for(user)
    first = client.post(JOBS, {"text": "One."}, format="json")
    assert first.status_code == 202
    assert client.post(JOBS, {"text": "Two."}, format="json").status_code == 202
    refused = client.post(JOBS, {"text": "Three."}, format="json")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_active_jobs"
    assert (error["limit"], error["used"]) == (2, 2)
    # A batch that would cross the limit is refused whole.
    assert client.post(f"{JOBS}/batch", {"jobs": [{"text": "A."}]}, format="json").status_code == 429
    assert SynthesisJob.objects.filter(owner=user).count() == 2

    job = SynthesisJob.objects.get(pk=first.json()["id"])
    job.status = JobStatus.RUNNING
    job.save()
    services.job_cancel(job=job)  # it finishes (cancelled): one slot free
    assert client.post(JOBS, {"text": "Three."}, format="json").status_code == 202
    assert client.post(JOBS, {"text": "Four."}, format="json").status_code == 429

    me = client.get(ME).json()
    assert me["limits"]["max_active_jobs"] == 2
    assert me["usage"]["active_jobs"] == 2


def test_daily_character_quota_and_a_per_user_override(settings: Any) -> None:
    settings.TTS_QUOTA_MAX_CHARS_PER_DAY = 30
    user = UserFactory()
    client = _client_for(user)
    assert client.post(JOBS, {"text": "Twenty characters ok"}, format="json").status_code == 202
    refused = client.post(JOBS, {"text": "Eleven more"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "quota_daily_chars"
    assert 1 <= int(refused["Retry-After"]) <= 86400
    assert client.get(ME).json()["usage"]["chars_today"] == 20

    UserQuota.objects.create(user=user, max_chars_per_day=100)  # what a staff user does in the admin
    assert client.post(JOBS, {"text": "Eleven more"}, format="json").status_code == 202
    assert client.get(ME).json()["limits"]["max_chars_per_day"] == 100
    other = _client_for(UserFactory())  # others keep the default
    assert other.get(ME).json()["limits"]["max_chars_per_day"] == 30


def test_staff_raise_a_users_limits_in_the_admin(client: Any) -> None:
    user = UserFactory()
    staff = StaffFactory(is_superuser=False)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="userquota"))
    client.force_login(staff)
    response = client.post(
        "/admin/gateway/userquota/add/", {"user": user.pk, "max_active_jobs": 500, "max_chars_per_day": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    quota = UserQuota.objects.get(user=user)
    assert quota.max_active_jobs == 500 and quota.max_chars_per_day is None
    assert _client_for(user).get(ME).json()["limits"]["max_active_jobs"] == 500


@pytest.mark.parametrize(
    ("previous", "current", "cost", "fraction", "expected"),
    [
        (0, 10, 1, 0.5, 30 + 0.1 * 60),  # this window is full: until it is the previous one, weighted 0.9
        (10, 5, 1, 0.5, 0.1 * 60),  # 10 * 0.5 + 5 + 1 > 10: wait until 10 * (1 - f) <= 4, f = 0.6
        (0, 0, 11, 0.0, 120),  # larger than the limit: never fits
    ],
)
def test_retry_after(previous: int, current: int, cost: int, fraction: float, expected: float) -> None:
    from gateway.throttling import retry_after

    wait = retry_after(limit=10, period=60, previous=previous, current=current, cost=cost, fraction=fraction)
    assert wait == pytest.approx(expected)


def test_a_counter_that_vanishes_between_add_and_incr_starts_again(rates: dict[str, str], monkeypatch: Any) -> None:
    """The embedded default's file cache is not atomic across processes: a counter replaced by a
    concurrent writer must neither fail the request nor log an error, and counting goes on."""
    from gateway import throttling

    def vanished(key: str, delta: int = 1, version: Any = None) -> int:
        raise ValueError(f"Key '{key}' not found")

    user = UserFactory()
    client = _client_for(user)
    monkeypatch.setattr(throttling.cache, "incr", vanished)
    windows = {int(time.time() // 60)}
    response = client.post("/api/v1/validate", {"text": "Hello there."}, format="json")
    windows.add(int(time.time() // 60))
    assert response.status_code == 200
    counts = [cache.get(f"throttle:validate:user:{user.pk}:{window}") for window in windows]
    assert 1 in counts  # counted again from this request


def test_a_cache_outage_lets_requests_through_with_one_report_per_interval(
    rates: dict[str, str], monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from gateway import throttling
    from gateway.metrics import THROTTLE_UNAVAILABLE
    from tts_runtime import RateLimitedLog

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(throttling.cache, "add", down)
    monkeypatch.setattr(throttling, "_outage", RateLimitedLog(throttling.logger, logging.ERROR, exc_info=True))
    before = THROTTLE_UNAVAILABLE.labels(scope="validate")._value.get()
    client = _client_for(UserFactory())
    with caplog.at_level("ERROR", logger="gateway.throttling"):
        statuses = [client.post("/api/v1/validate", {"text": "Hello."}, format="json").status_code for _ in range(5)]
    assert statuses == [200] * 5  # over the 3/min limit, but nothing can count
    assert THROTTLE_UNAVAILABLE.labels(scope="validate")._value.get() - before == 5
    reports = [record for record in caplog.records if "throttle counter unavailable" in record.getMessage()]
    assert len(reports) == 1 and reports[0].exc_info is not None  # one traceback, not five
    assert "ConnectionError" in caplog.text


def test_the_daily_quota_sums_stored_text_lengths_and_the_migration_fills_them_in() -> None:
    """Submit stores len(text); the quota sums that column, never the texts themselves."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection

    from gateway.quotas import quota_usage

    user = UserFactory()
    old = SynthesisJobFactory(owner=user, text="x" * 700, text_chars=0)  # a row from before the column
    migration = import_module("gateway.migrations.0006_job_text_chars")
    with connection.schema_editor() as editor:
        migration.count_existing_texts(apps, editor)
    old.refresh_from_db()
    assert old.text_chars == 700
    response = _client_for(user).post(JOBS, {"text": "Hello there, quota."}, format="json")
    assert response.status_code == 202
    assert SynthesisJob.objects.get(pk=response.json()["id"]).text_chars == len("Hello there, quota.")
    assert quota_usage(user=user).chars_today == 700 + len("Hello there, quota.")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_cannot_both_take_the_last_active_slot(settings: Any) -> None:
    """The quota query runs after the owner's row lock is granted, in its own statement, so it
    sees the job the lock holder wrote: the second submit waits, then is refused."""
    import threading

    from django.db import connection, transaction

    from gateway.errors import ApplicationError

    settings.TTS_QUOTA_MAX_ACTIVE_JOBS = 1
    user = UserFactory()
    holding = threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.job_submit(owner=user, text="First.")
                holding.set()
                time.sleep(0.5)  # the owner's row stays locked until this commits
        finally:
            holding.set()
            connection.close()

    def second() -> None:
        holding.wait(10)
        began = time.monotonic()
        try:
            services.job_submit(owner=user, text="Second.")
            outcome["result"] = "accepted"
        except ApplicationError as error:
            outcome["result"] = error.code
        finally:
            outcome["waited_s"] = time.monotonic() - began
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome["result"] == "quota_active_jobs"
    assert outcome["waited_s"] >= 0.3  # it waited for the first submit's lock
    assert SynthesisJob.objects.filter(owner=user).count() == 1
