"""Per-user quotas: jobs queued or running at once, characters submitted per UTC day.

Defaults come from settings (TTS_QUOTA_MAX_ACTIVE_JOBS, TTS_QUOTA_MAX_CHARS_PER_DAY); a
`UserQuota` row overrides either for one user (staff edit it in the admin).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from .account_models import UserQuota
from .errors import ApplicationError
from .models import JobStatus, SynthesisJob

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
_ACTIVE_VALUES = [str(status) for status in ACTIVE_STATUSES]  # TextChoices: str() is the value


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
    with connection.cursor() as cursor:
        cursor.execute(_lock_and_limits_sql(connection.vendor), [owner.pk])
        row = cursor.fetchone()
    return _limits(*(row or (None, None)))


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def quota_usage(*, user: AbstractBaseUser, now: datetime | None = None) -> QuotaUsage:
    """Jobs now queued or running, and characters of the jobs submitted since 00:00 UTC.

    Deleted jobs no longer count (retention deletes only jobs older than a day).
    """
    day_start = _day_start(now or timezone.now())
    since = connection.ops.adapt_datetimefield_value(day_start)
    with connection.cursor() as cursor:
        cursor.execute(_usage_sql(connection.vendor), [*_ACTIVE_VALUES, since, user.pk, *_ACTIVE_VALUES, since])
        active, chars = cursor.fetchone()
    return QuotaUsage(active_jobs=int(active), chars_today=int(chars), day_resets_at=day_start + timedelta(days=1))


# Every submit runs both queries below, on the cores that synthesize. Written as SQL (built once
# per process from the models' tables and columns): the ORM spent about as much CPU compiling
# them as the rest of the submit's queries together (a third of a submit's time, profiled), for
# two statements that never change.
@functools.cache
def _lock_and_limits_sql(vendor: str) -> str:
    """For the database `vendor` (the cache key): the owner's row locked (FOR UPDATE where the
    database has it; SQLite's write lock is the transaction's) with the limits of their UserQuota
    row, NULL where none: scalar subqueries, not a join, so that only the user's row is locked."""
    quote = connection.ops.quote_name
    users = get_user_model()._meta
    quotas = UserQuota._meta
    user_pk = f"{quote(users.db_table)}.{quote(users.pk.column)}"
    own = f"{quote(quotas.db_table)}.{quote(quotas.get_field('user').column)} = {user_pk}"

    def limit(field: str) -> str:
        column = quote(quotas.get_field(field).column)
        return f"(SELECT {column} FROM {quote(quotas.db_table)} WHERE {own})"

    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT {limit('max_active_jobs')}, {limit('max_chars_per_day')} FROM {quote(users.db_table)} "
        f"WHERE {user_pk} = %s{lock}"
    )


@functools.cache
def _usage_sql(vendor: str) -> str:
    """For the database `vendor` (the cache key): active jobs and characters since a time, of one
    owner, in one pass over their jobs of the day and their active ones; parameters: the active
    statuses, the time, the owner, the active statuses, the time."""
    quote = connection.ops.quote_name
    jobs = SynthesisJob._meta

    def column(field: str) -> str:
        return quote(jobs.get_field(field).column)

    active = f"{column('status')} IN ({', '.join(['%s'] * len(ACTIVE_STATUSES))})"
    today = f"{column('queued_at')} >= %s"
    return (
        f"SELECT COUNT(CASE WHEN {active} THEN 1 END), "
        f"COALESCE(SUM(CASE WHEN {today} THEN {column('text_chars')} END), 0) "
        f"FROM {quote(jobs.db_table)} WHERE {column('owner')} = %s AND ({active} OR {today})"
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
