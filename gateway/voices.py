"""The gateway's narrow view of `vits`: voice lookup and the text front end.

Both are fast (configs and text only, no model load), so submit validates synchronously.
Imports are lazy: `vits` pulls in torch, which the admin and most commands never need.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def voice_list() -> list[Any]:
    import vits

    return list(vits.list_voices(settings.TTS_VOICES_DIR))


def voice_get(*, voice_id: str) -> Any:
    """The VoiceInfo of `voice_id`; raises `vits.errors.VoiceNotFoundError`."""
    import vits

    return vits.find_voice(voice_id, settings.TTS_VOICES_DIR)


def text_sentences(*, text: str) -> list[str]:
    """Normalized sentences; raises a `vits.errors.VitsInputError` subclass (with `.field`)."""
    from vits.text import prepare_sentences

    return list(prepare_sentences(text))
