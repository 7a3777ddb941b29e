"""Request rate limits per user, counted in the shared cache (Redis in production).

Three scopes: `submit` (a batch counts one per job), `validate` and `read` (every other
request). A view names its scope for unsafe methods with `throttle_scope` and may charge a
request more than one unit with `throttle_cost(request) -> int`; safe methods are `read`.
Limits are rates like "120/min" in settings.TTS_THROTTLE_RATES (from the environment).

Counted with the cache's atomic increment: every gunicorn worker (and machine) sharing the
Redis counts together, and one user's counters never touch another's.
A denied request is not counted, so a client that waits for Retry-After gets its full rate.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tts_runtime import RateLimitedLog

from .metrics import THROTTLE_UNAVAILABLE

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# While the cache is down every request fails to count: one report with its traceback per
# interval, saying how many requests went through uncounted since the last one.
_outage = RateLimitedLog(logger, logging.ERROR, exc_info=True)


def parse_rate(rate: str) -> tuple[int, int]:
    """ "120/min" -> (120, 60): requests per period, the period's first letter s, m, h or d (as DRF)."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip()[:1].lower()]
    except (ValueError, KeyError):
        raise ValueError(f"a rate is '<count>/<s|min|hour|day>', got {rate!r}") from None


def request_scope(request: Request, view: Any) -> str:
    if request.method in SAFE_METHODS:
        return "read"
    return getattr(view, "throttle_scope", None) or "read"


def retry_after(*, limit: int, period: int, previous: int, current: int, cost: int, fraction: float) -> float:
    """Seconds until `cost` more units fit under the sliding estimate (see `UserRateThrottle`)."""
    if cost > limit:
        return 2.0 * period  # never fits in one window; the client must send less per request
    if current + cost <= limit:
        # Wait for the previous window's weight to shrink enough.
        needed = 1.0 - (limit - current - cost) / previous if previous else fraction
        return max(0.0, needed - fraction) * period
    # Wait for this window to become the previous one, then for its weight to shrink.
    needed = 1.0 - (limit - cost) / current if current else 0.0
    return (1.0 - fraction + max(0.0, needed)) * period


class UserRateThrottle(BaseThrottle):
    """The API's one throttle class (REST_FRAMEWORK DEFAULT_THROTTLE_CLASSES).

    A sliding window estimated from two fixed windows (this one and the previous one,
    weighted by how much of it still overlaps the last `period` seconds): no burst of twice
    the limit across a window boundary, and only two counters per user and scope.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = request_scope(request, view)
        cost_of = getattr(view, "throttle_cost", None)
        cost = max(1, int(cost_of(request))) if callable(cost_of) and scope != "read" else 1
        user = request.user
        ident = f"user:{user.pk}" if user and user.is_authenticated else f"ip:{self.get_ident(request)}"
        self._wait = throttle_wait(scope=scope, ident=ident, cost=cost)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


def throttle_wait(*, scope: str, ident: str, cost: int = 1) -> float | None:
    """Count `cost` units for `ident` ("user:<pk>" or "ip:<address>") in `scope`; None when the
    request may go ahead, else the seconds to wait (the request is then not counted).

    The API's throttle class and the async views (SSE, audio streams, OpenAI speech) both call it,
    so a user has one budget per scope whichever endpoint they use. Blocking (cache round
    trips): async callers run it with `sync_to_async`.
    """
    rate = settings.TTS_THROTTLE_RATES.get(scope)
    if not rate:
        return None
    limit, period = parse_rate(rate)
    now = time.time()
    window, offset = divmod(now, period)
    fraction = offset / period
    key = f"throttle:{scope}:{ident}:{int(window)}"
    try:
        cache.add(key, 0, timeout=2 * period + 1)
        try:
            current = cache.incr(key, cost)
        except ValueError:
            # The embedded default's file cache is not atomic across processes: a concurrent
            # writer can replace the counter between add and incr. Start it again; the count is
            # approximate there, exact on Redis (production).
            cache.set(key, cost, timeout=2 * period + 1)
            current = cost
        previous = int(cache.get(f"throttle:{scope}:{ident}:{int(window) - 1}") or 0)
    except Exception:
        # The limiter must not take the API down with it: without the cache, let it through.
        THROTTLE_UNAVAILABLE.labels(scope=scope).inc()
        _outage("throttle counter unavailable (scope %s); request allowed uncounted", scope)
        return None
    if previous * (1.0 - fraction) + current <= limit:
        return None
    try:
        cache.decr(key, cost)  # denied requests do not use up the window
    except Exception:
        logger.warning("could not give back a denied request's throttle units (scope %s)", scope)
    wait = retry_after(
        limit=limit, period=period, previous=previous, current=current - cost, cost=cost, fraction=fraction
    )
    logger.info("throttled %s in scope %s: limit %d per %ds, retry after %.0fs", ident, scope, limit, period, wait)
    return max(1.0, math.ceil(wait))
