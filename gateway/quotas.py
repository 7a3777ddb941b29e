"""Per-user quotas: jobs queued or running at once, characters submitted per UTC day.

Defaults come from settings (TTS_QUOTA_MAX_ACTIVE_JOBS, TTS_QUOTA_MAX_CHARS_PER_DAY); a
`UserQuota` row overrides either for one user (staff edit it in the admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .account_models import UserQuota
from .errors import ApplicationError
from .models import JobStatus, SynthesisJob

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class QuotaLimits:
    max_active_jobs: int
    max_chars_per_day: int


@dataclass(frozen=True)
class QuotaUsage:
    active_jobs: int
    chars_today: int
    day_resets_at: datetime


def quota_limits(*, user: AbstractBaseUser) -> QuotaLimits:
    override = UserQuota.objects.filter(user_id=user.pk).values_list("max_active_jobs", "max_chars_per_day").first()
    return _limits(*(override or (None, None)))


def _limits(active: int | None, chars: int | None) -> QuotaLimits:
    """The user's own limits where set (not None), the settings' defaults otherwise."""
    return QuotaLimits(
        max_active_jobs=settings.TTS_QUOTA_MAX_ACTIVE_JOBS if active is None else active,
        max_chars_per_day=settings.TTS_QUOTA_MAX_CHARS_PER_DAY if chars is None else chars,
    )


def _lock_owner_and_read_limits(*, owner: AbstractBaseUser) -> QuotaLimits:
    """Lock the owner's user row and read their limits in the same query (one round trip per submit)."""
    own = UserQuota.objects.filter(user_id=OuterRef("pk"))
    row = (
        get_user_model()
        .objects.select_for_update()  # scalar subqueries, not a join: FOR UPDATE locks the user row only
        .filter(pk=owner.pk)
        .annotate(
            max_active_jobs=Subquery(own.values("max_active_jobs")[:1]),
            max_chars_per_day=Subquery(own.values("max_chars_per_day")[:1]),
        )
        .values_list("max_active_jobs", "max_chars_per_day")
        .first()
    )
    return _limits(*(row or (None, None)))


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def quota_usage(*, user: AbstractBaseUser, now: datetime | None = None) -> QuotaUsage:
    """Jobs now queued or running, and characters of the jobs submitted since 00:00 UTC.

    Deleted jobs no longer count (retention deletes only jobs older than a day).
    """
    day_start = _day_start(now or timezone.now())
    active, today = Q(status__in=ACTIVE_STATUSES), Q(queued_at__gte=day_start)
    usage = (
        SynthesisJob.objects.filter(owner_id=user.pk)
        .filter(active | today)
        .aggregate(active=Count("pk", filter=active), chars=Coalesce(Sum("text_chars", filter=today), 0))
    )
    return QuotaUsage(
        active_jobs=usage["active"], chars_today=int(usage["chars"]), day_resets_at=day_start + timedelta(days=1)
    )


def quota_reserve(*, owner: AbstractBaseUser, jobs: int, chars: int) -> None:
    """Raise 429 if `jobs` more jobs of `chars` characters would exceed the owner's quota.

    Call inside the transaction that writes the jobs: it locks the owner's user row, so two
    concurrent submissions of one user cannot both pass on the same remaining quota.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quota_reserve must run inside the transaction that creates the jobs")
    limits = _lock_owner_and_read_limits(owner=owner)
    now = timezone.now()
    usage = quota_usage(user=owner, now=now)
    if usage.active_jobs + jobs > limits.max_active_jobs:
        raise ApplicationError(
            f"at most {limits.max_active_jobs} jobs may be queued or running at once; "
            f"{usage.active_jobs} are, and this request adds {jobs}",
            code="quota_active_jobs",
            field=None,
            status=429,
            extra={"limit": limits.max_active_jobs, "used": usage.active_jobs},
        )
    if usage.chars_today + chars > limits.max_chars_per_day:
        raise ApplicationError(
            f"at most {limits.max_chars_per_day} characters may be submitted per day (UTC); "
            f"{usage.chars_today} were, and this request adds {chars}",
            code="quota_daily_chars",
            field=None,
            status=429,
            extra={
                "limit": limits.max_chars_per_day,
                "used": usage.chars_today,
                "resets_at": usage.day_resets_at.isoformat(),
                "retry_after_s": max(1, int((usage.day_resets_at - now).total_seconds())),
            },
        )
