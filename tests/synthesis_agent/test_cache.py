"""Sentence cache: key stability and sensitivity, file and Redis back ends, a dead Redis."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from devstack.broker import free_port
from synthesis_agent import metrics
from synthesis_agent.cache import (
    MAX_VALUE_BYTES,
    CachedAudio,
    FileSentenceCache,
    RedisSentenceCache,
    cache_key,
    decode_value,
    encode_value,
)

BASE = {
    "voice_id": "en_US-joe-medium",
    "model_checksum": "abc123",
    "params": {"length_scale": 1.0, "noise_scale": None, "noise_w": 0.8, "speaker": None, "seed": 7},
    "sentence": "Hello there.",
}


def test_key_is_stable_across_param_order_and_number_spelling() -> None:
    key = cache_key(**BASE)  # type: ignore[arg-type]
    assert key == cache_key(**BASE)  # type: ignore[arg-type]
    reordered = {"seed": 7, "noise_w": 0.8, "length_scale": 1}
    assert cache_key(**{**BASE, "params": reordered}) == key  # type: ignore[arg-type]
    assert len(key) == 64 and key == key.lower()


@pytest.mark.parametrize(
    "change",
    [
        {"voice_id": "other-voice"},
        {"model_checksum": "abc124"},
        {"sentence": "Hello there!"},
        {"params": {**BASE["params"], "length_scale": 1.1}},  # type: ignore[dict-item]
        {"params": {**BASE["params"], "noise_scale": 0.5}},  # type: ignore[dict-item]
        {"params": {**BASE["params"], "noise_w": 0.7}},  # type: ignore[dict-item]
        {"params": {**BASE["params"], "speaker": 1}},  # type: ignore[dict-item]
        {"params": {**BASE["params"], "seed": 8}},  # type: ignore[dict-item]
    ],
)
def test_key_changes_with_everything_that_changes_the_audio(change: dict[str, object]) -> None:
    assert cache_key(**{**BASE, **change}) != cache_key(**BASE)  # type: ignore[arg-type]


def test_values_round_trip_and_garbage_is_a_miss() -> None:
    audio = CachedAudio(pcm=b"\x01\x00\x02\x00", sample_rate=22050)
    assert decode_value(encode_value(audio)) == audio
    assert decode_value(b"nonsense") is None
    assert decode_value(b"") is None


def test_file_cache_round_trip_expiry_and_size_cap(tmp_path: Path) -> None:
    cache = FileSentenceCache(tmp_path, ttl_s=60)
    audio = CachedAudio(pcm=b"\x00\x01" * 100, sample_rate=8000)
    assert cache.get("a" * 64) is None
    cache.put("a" * 64, audio)
    assert cache.get("a" * 64) == audio
    path = tmp_path / "aa" / ("a" * 64)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert cache.get("a" * 64) is None and not path.exists()
    cache.put("b" * 64, CachedAudio(pcm=b"\x00" * (MAX_VALUE_BYTES + 2), sample_rate=8000))
    assert cache.get("b" * 64) is None  # too large to keep


def test_file_cache_prunes_oldest_beyond_max_bytes(tmp_path: Path) -> None:
    cache = FileSentenceCache(tmp_path, ttl_s=600, max_bytes=5000)
    for index in range(10):
        key = f"{index:02d}" + "0" * 62
        cache.put(key, CachedAudio(pcm=b"\x00" * 1000, sample_rate=8000))
        os.utime(tmp_path / key[:2] / key, (time.time() - 100 + index, time.time() - 100 + index))
    cache.prune()
    remaining = sorted(path.name[:2] for path in tmp_path.glob("*/*"))
    assert len(remaining) <= 4 and remaining[-1] == "09"


def test_redis_cache_round_trip_with_ttl(redis_url: str) -> None:
    cache = RedisSentenceCache(redis_url, ttl_s=30)
    audio = CachedAudio(pcm=b"\x10\x00" * 50, sample_rate=22050)
    hits = metrics.sample("tts_agent_cache_requests_total", {"result": "hit"})
    assert cache.get("k" * 64) is None
    cache.put("k" * 64, audio)
    assert cache.get("k" * 64) == audio
    assert metrics.sample("tts_agent_cache_requests_total", {"result": "hit"}) == hits + 1
    ttl = cache._redis.ttl("tts:sentence:" + "k" * 64)
    assert 0 < int(ttl) <= 30  # type: ignore[arg-type]
    cache.close()


def test_dead_redis_counts_errors_quickly_and_never_raises() -> None:
    cache = RedisSentenceCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=30, retry_after_s=0.2)
    errors = metrics.sample("tts_agent_cache_requests_total", {"result": "error"})
    began = time.monotonic()
    for _ in range(20):
        assert cache.get("x" * 64) is None
        cache.put("x" * 64, CachedAudio(pcm=b"\x00\x00", sample_rate=8000))
    assert time.monotonic() - began < 2.0
    assert metrics.sample("tts_agent_cache_requests_total", {"result": "error"}) >= errors + 20


def test_redis_cache_reconnects_after_an_outage(redis_url: str) -> None:
    cache = RedisSentenceCache(redis_url, ttl_s=30, retry_after_s=0.1)
    cache._down_until = time.monotonic() + 0.1  # as after a failure
    assert cache.get("r" * 64) is None  # skipped while "down"
    time.sleep(0.15)
    cache.put("r" * 64, CachedAudio(pcm=b"\x00\x00", sample_rate=8000))
    assert cache.get("r" * 64) is not None
    cache.close()
