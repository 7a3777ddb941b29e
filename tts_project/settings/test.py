"""Test settings: real Postgres and Redis (see tests/conftest.py), fast hashing, no broker default.

pytest-django creates `test_<name>` from DATABASE_URL's database. Tests that publish point
PULSAR_URL at the pulsar-lite fixture with `settings.PULSAR_URL = pulsar_broker.url`.
"""

from __future__ import annotations

from pathlib import Path

from .base import *  # noqa: F403
from .base import _cache, _database, env

DATABASE_URL = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/tts")
DATABASES = {"default": _database(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = 0  # threads in consumer tests must not keep connections
# In-process tests open and close connections per test database; the pool is exercised by a
# stack started on the service's own settings (tests/integration/test_postgres_connections.py).
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/14")
CACHES = {"default": _cache(REDIS_URL)}

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# No manifest needed: tests never run collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TTS_PUBLISH_TIMEOUT_S = 3.0
TTS_PUBLISH_BACKOFF_S = 0.0
TTS_OUTBOX_RELAY_AFTER_S = 0.0
TTS_STALLED_JOB_FAIL_AFTER_S = 0.0  # the watchdog tests count re-sends; one test sets a floor
LOGGING["loggers"]["gateway"]["level"] = "DEBUG"  # type: ignore[index] # noqa: F405
# Whitenoise scans STATIC_ROOT at startup and warns when it is missing; tests never collect.
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # noqa: F405
# Throttle counters live in the shared Redis and user ids repeat between test runs: only the
# throttling tests (which set their own rates and clear the cache) should ever hit a limit.
TTS_THROTTLE_RATES = {"submit": "100000/min", "validate": "100000/min", "read": "100000/min"}
