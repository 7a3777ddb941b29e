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
