"""Django system checks of the service's settings (run by `manage.py check`, `migrate`, `runserver`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register("tts")
def dedicated_voices_installed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every voice of TTS_DEDICATED_VOICES must be one the gateway knows.

    A voice the gateway lacks is refused at submit (`unknown_voice`), so its pool would never get
    work: a configuration mistake (a typo, or TTS_VOICES_DIR not mounted) to report before serving.
    """
    from vits.errors import VoiceNotFoundError

    from .voices import voice_get

    errors: list[checks.CheckMessage] = []
    for voice in sorted(settings.TTS_DEDICATED_VOICES):
        try:
            voice_get(voice_id=voice)
        except VoiceNotFoundError as error:
            errors.append(
                checks.Error(
                    f"TTS_DEDICATED_VOICES names voice {voice!r}, which is not installed: {error}",
                    hint="Fix the id, or set TTS_VOICES_DIR to the folder holding its files (and mount it).",
                    id="tts.E001",
                )
            )
    return errors


@checks.register("tts")
def request_threads_fit_the_pool(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A gateway worker's request threads and its streams' database threads each hold one pooled
    connection while they run: more of them than the pool makes requests wait for a connection
    (and answer 503 after the pool's 10 s), where they could have waited for a thread instead."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict):
        return []  # no pool (SQLite, or connections per thread behind PgBouncer)
    return request_thread_warnings(request_threads=settings.WEB_REQUEST_THREADS, pool_size=pool["max_size"])


def request_thread_warnings(*, request_threads: int, pool_size: int) -> list[checks.CheckMessage]:
    from .streaming.common import DB_THREADS

    wanted = request_threads + DB_THREADS
    if wanted <= pool_size:
        return []
    return [
        checks.Warning(
            f"TTS_WEB_THREADS={request_threads} request threads and {DB_THREADS} stream database threads "
            f"can hold {wanted} connections, more than DATABASE_POOL_MAX_SIZE={pool_size}",
            hint=f"Lower TTS_WEB_THREADS or raise DATABASE_POOL_MAX_SIZE to at least {wanted}.",
            id="tts.W001",
        )
    ]
