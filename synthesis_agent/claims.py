"""Claims on job attempts and a crash counter per attempt, in Redis.

Before working on a delivery the agent claims `(job_id, attempt)` (`tts_contracts.claim_key`,
SET NX with an expiry it renews with every heartbeat; the value is its agent id), so two
deliveries of one job (a watchdog re-send, a redelivery after a broker restart) never synthesize
at the same time. A claim of a dead agent expires by itself. An ended attempt leaves no mark:
the gateway re-sends a job whose final events the broker lost, and that re-send must run.

The crash counter makes "this text kills agents" visible without broker redelivery counts (they
reset when the broker restarts): each delivery adds one when it starts and takes it back when it
ends with an outcome (ack, release, retry), so the count a delivery sees is one plus the
deliveries that died on the way.

Like the cache, claims degrade instead of failing: with Redis down a claim answers `error`, the
agent works unclaimed and the observer counts it.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from tts_contracts import claim_key

from .observer import ClaimResult

logger = logging.getLogger(__name__)

DELIVERIES_TTL_S = 24 * 3600  # long enough for any job to crash-loop through its attempts

# Extend or delete a key only while it still holds our agent id: an expired claim taken over by
# another agent must not be touched.
# Renew: 1 = still ours (an expired, untaken claim is taken back), 0 = another agent holds it now.
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Claims(Protocol):
    ttl_s: float  # a claim not renewed for this long has expired

    def claim(self, job_id: str, attempt: int) -> ClaimResult | None:
        """None: claims are off (no Redis configured)."""
        ...

    def renew(self, job_id: str, attempt: int) -> bool:
        """False only when another agent holds the claim now (this one was frozen past its expiry)."""
        ...

    def release(self, job_id: str, attempt: int) -> None: ...

    def delivery_started(self, job_id: str, attempt: int) -> int | None:
        """1 + the deliveries of this attempt that died without an outcome; None if unknown."""
        ...

    def delivery_ended(self, job_id: str, attempt: int, *, final: bool) -> None: ...

    def delivery_progressed(self, job_id: str, attempt: int) -> None:
        """This delivery synthesized something new: the deliveries before it were not a crash loop."""
        ...


class NoClaims:
    """No Redis configured (the embedded default with one agent per class): nothing to share."""

    ttl_s = 0.0

    def claim(self, job_id: str, attempt: int) -> ClaimResult | None:
        return None

    def renew(self, job_id: str, attempt: int) -> bool:
        return True

    def release(self, job_id: str, attempt: int) -> None:
        return None

    def delivery_started(self, job_id: str, attempt: int) -> int | None:
        return None

    def delivery_ended(self, job_id: str, attempt: int, *, final: bool) -> None:
        return None

    def delivery_progressed(self, job_id: str, attempt: int) -> None:
        return None


class RedisClaims:
    def __init__(self, url: str, *, agent_id: str, ttl_s: float, socket_timeout_s: float = 0.5) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.agent_id = agent_id
        self.ttl_s = ttl_s
        self._lock = threading.Lock()

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    @staticmethod
    def _deliveries_key(job_id: str, attempt: int) -> str:
        return claim_key(job_id=job_id, attempt=attempt).replace(":claim:", ":deliveries:", 1)

    def claim(self, job_id: str, attempt: int) -> ClaimResult | None:
        key = claim_key(job_id=job_id, attempt=attempt)
        try:
            if self._redis.set(key, self.agent_id, nx=True, px=self.ttl_ms):
                return "claimed"
            holder = self._redis.get(key)
            if holder is None and self._redis.set(key, self.agent_id, nx=True, px=self.ttl_ms):
                return "claimed"  # expired between the two calls
            if holder == self.agent_id.encode():
                # Ours from before a restart under the same id: that process is gone.
                self._redis.pexpire(key, self.ttl_ms)
                return "claimed"
            holder_id = holder.decode(errors="replace") if isinstance(holder, bytes) else str(holder)
            logger.info("job %s attempt %d is claimed by %s", job_id, attempt, holder_id)
            return "held_elsewhere"
        except self._errors as error:
            logger.warning("claiming job %s attempt %d failed, working unclaimed: %s", job_id, attempt, error)
            return "error"

    def renew(self, job_id: str, attempt: int) -> bool:
        return self._run(_RENEW, claim_key(job_id=job_id, attempt=attempt), self.agent_id, self.ttl_ms) != 0

    def release(self, job_id: str, attempt: int) -> None:
        self._run(_RELEASE, claim_key(job_id=job_id, attempt=attempt), self.agent_id)

    def _run(self, script: str, key: str, *args: str | int) -> int | None:
        """The script's answer, or None when Redis could not be asked (the claim is then kept)."""
        try:
            return int(self._redis.eval(script, 1, key, *args))
        except self._errors as error:
            logger.warning("claim update of %s failed: %s", key, error)
            return None

    def delivery_started(self, job_id: str, attempt: int) -> int | None:
        key = self._deliveries_key(job_id, attempt)
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, DELIVERIES_TTL_S)
            count, _ = pipe.execute()
            return int(count)
        except self._errors as error:
            logger.warning("counting the delivery of job %s failed: %s", job_id, error)
            return None

    def delivery_ended(self, job_id: str, attempt: int, *, final: bool) -> None:
        key = self._deliveries_key(job_id, attempt)
        try:
            if final:
                self._redis.delete(key)
            else:
                self._redis.decr(key)
        except self._errors as error:
            logger.warning("updating the delivery count of job %s failed: %s", job_id, error)

    def delivery_progressed(self, job_id: str, attempt: int) -> None:
        key = self._deliveries_key(job_id, attempt)
        try:
            self._redis.set(key, 1, ex=DELIVERIES_TTL_S)  # only this delivery is still open
        except self._errors as error:
            logger.warning("resetting the delivery count of job %s failed: %s", job_id, error)

    def close(self) -> None:
        self._redis.close()
