"""Sentence cache: Redis when REDIS_URL is set, else files under var/agent-cache, or off.

The cache is also the job checkpoint: a redelivered job (another agent after a crash or a
release) finds the sentences already synthesized and replays them.

Memory is bounded on three sides: every entry has a TTL (TTS_CACHE_TTL_S), no value larger
than MAX_VALUE_BYTES is stored, and Redis itself must run with `maxmemory` and
`maxmemory-policy allkeys-lru` (see docker-compose.yml / docs) so that it evicts old sentences
instead of refusing writes. The file cache prunes itself to TTS_AGENT_CACHE_MAX_BYTES.

A cache never raises to its caller: an unreachable Redis reports an `error` request to its
observer (`tts_agent_cache_requests_total{result="error"}`), logs a rate-limited warning and synthesis
goes on uncached; after `retry_after_s` the next request tries Redis again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tts_runtime import RateLimitedLog

from .config import AgentConfig
from .metrics import PrometheusObserver
from .observer import AgentObserver

logger = logging.getLogger(__name__)

KEY_VERSION = 1
KEY_PREFIX = "tts:sentence:"
MAX_VALUE_BYTES = 4 * 1024 * 1024  # ~95 s of 22 kHz PCM16: far longer than any sane sentence
_HEADER = struct.Struct("<4sI")  # magic, sample rate
_MAGIC = b"TTS1"
_FLOAT_PARAMS = frozenset({"length_scale", "noise_scale", "noise_w"})


@dataclass(frozen=True)
class CachedAudio:
    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate if self.sample_rate else 0.0


def cache_key(*, voice_id: str, model_checksum: str, params: dict[str, Any], sentence: str) -> str:
    """Stable hash of everything that changes a sentence's audio.

    Canonical JSON (sorted keys, floats as floats) so that `1` and `1.0` or a reordered
    params dict give the same key; unknown params are part of the key too.
    """
    canonical_params = {
        key: float(value) if key in _FLOAT_PARAMS else value for key, value in params.items() if value is not None
    }
    material = json.dumps(
        [KEY_VERSION, voice_id, model_checksum, canonical_params, sentence],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def encode_value(audio: CachedAudio) -> bytes:
    return _HEADER.pack(_MAGIC, audio.sample_rate) + audio.pcm


def decode_value(data: bytes) -> CachedAudio | None:
    """None for anything that is not a value this code wrote (treated as a miss)."""
    if len(data) < _HEADER.size:
        return None
    magic, sample_rate = _HEADER.unpack_from(data)
    if magic != _MAGIC or sample_rate <= 0 or (len(data) - _HEADER.size) % 2:
        return None
    return CachedAudio(pcm=data[_HEADER.size :], sample_rate=sample_rate)


class SentenceCache(Protocol):
    def get(self, key: str) -> CachedAudio | None: ...

    def put(self, key: str, audio: CachedAudio) -> None: ...


class NullCache:
    """TTS_CACHE_ENABLED=0 (benchmarks): every request is a miss, nothing is stored."""

    def get(self, key: str) -> CachedAudio | None:
        return None

    def put(self, key: str, audio: CachedAudio) -> None:
        return None


class RedisSentenceCache:
    """Redis-backed cache with short socket timeouts and a circuit breaker.

    After an error, requests skip Redis for `retry_after_s` (counted as errors) so that a
    dead or black-holed Redis costs at most one timeout per interval, not one per sentence.
    redis-py's connection pool reconnects by itself once the server is back.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: int,
        socket_timeout_s: float = 0.25,
        retry_after_s: float = 2.0,
        observer: AgentObserver | None = None,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),  # the default retries with backoff would stall synthesis
            health_check_interval=0,
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.url = url
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._warn = RateLimitedLog(logger)
        self._observer = observer or PrometheusObserver()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, error: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_after_s
        self._observer.on_cache_request(result="error")
        self._warn("sentence cache %s on Redis failed, synthesizing uncached: %s", operation, error)

    def get(self, key: str) -> CachedAudio | None:
        if not self._available():
            self._observer.on_cache_request(result="error")
            return None
        try:
            data = self._redis.get(KEY_PREFIX + key)
        except self._errors as error:
            self._failed("get", error)
            return None
        value = decode_value(data) if isinstance(data, bytes) else None
        self._observer.on_cache_request(result="hit" if value else "miss")
        return value

    def put(self, key: str, audio: CachedAudio) -> None:
        if len(audio.pcm) > MAX_VALUE_BYTES or not self._available():
            return
        try:
            self._redis.set(KEY_PREFIX + key, encode_value(audio), ex=self.ttl_s)
        except self._errors as error:
            self._failed("put", error)

    def close(self) -> None:
        self._redis.close()


class FileSentenceCache:
    """One file per sentence under `root/ab/<key>`; expiry by mtime; pruned to `max_bytes`.

    Writes go through a temporary file and an atomic rename, so agents sharing the directory
    never read half a value.
    """

    PRUNE_EVERY_PUTS = 200

    def __init__(
        self, root: Path, *, ttl_s: int, max_bytes: int = 1 << 30, observer: AgentObserver | None = None
    ) -> None:
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._puts = 0
        self._warn = RateLimitedLog(logger)
        self._observer = observer or PrometheusObserver()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> CachedAudio | None:
        path = self._path(key)
        try:
            if time.time() - path.stat().st_mtime > self.ttl_s:
                path.unlink(missing_ok=True)
                value = None
            else:
                value = decode_value(path.read_bytes())
        except FileNotFoundError:
            value = None
        except OSError as error:
            self._observer.on_cache_request(result="error")
            self._warn("sentence cache read of %s failed: %s", path, error)
            return None
        self._observer.on_cache_request(result="hit" if value else "miss")
        return value

    def put(self, key: str, audio: CachedAudio) -> None:
        if len(audio.pcm) > MAX_VALUE_BYTES:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(encode_value(audio))
            os.replace(temporary, path)
        except OSError as error:
            self._observer.on_cache_request(result="error")
            self._warn("sentence cache write to %s failed: %s", path, error)
            return
        self._puts += 1
        if self._puts % self.PRUNE_EVERY_PUTS == 0:
            self.prune()

    def prune(self) -> None:
        """Delete expired entries, then the oldest until the cache is under 90 % of max_bytes."""
        now = time.time()
        entries: list[tuple[float, int, Path]] = []
        for path in self.root.glob("*/*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if now - stat.st_mtime > self.ttl_s:
                path.unlink(missing_ok=True)
            else:
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(entries):
            path.unlink(missing_ok=True)
            total -= size
            if total <= self.max_bytes * 0.9:
                break


def build_cache(config: AgentConfig, *, observer: AgentObserver | None = None) -> SentenceCache:
    if not config.cache_enabled:
        return NullCache()
    if config.redis_url:
        return RedisSentenceCache(config.redis_url, ttl_s=config.cache_ttl_s, observer=observer)
    return FileSentenceCache(
        config.cache_dir, ttl_s=config.cache_ttl_s, max_bytes=config.cache_max_bytes, observer=observer
    )
