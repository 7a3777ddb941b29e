"""The gateway's narrow view of `vits`: voice lookup and the text front end.

Both are fast (configs and text only, no model load), so submit validates synchronously.
Imports are lazy: `vits` pulls in torch, which the admin and most commands never need.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings


def voice_list() -> list[Any]:
    import vits

    return list(vits.list_voices(settings.TTS_VOICES_DIR))


# Every submit looks its voice up; listing reads each voice's config from disk, so the listing
# is reused this long. A voice added in the meantime is found at once (a miss reads the
# directory again); a removed one is still accepted this long, and its agent then fails the job.
VOICE_LISTING_TTL_S = 10.0
_listing: tuple[float, Any, dict[str, Any]] | None = None  # (read at, voices dir, voices by id)


def voice_get(*, voice_id: str) -> Any:
    """The VoiceInfo of `voice_id`; raises `vits.errors.VoiceNotFoundError`."""
    global _listing
    import vits

    voices_dir = settings.TTS_VOICES_DIR
    now = time.monotonic()
    listing = _listing
    if listing is None or listing[1] != voices_dir or now - listing[0] > VOICE_LISTING_TTL_S:
        listing = _listing = (now, voices_dir, {info.id: info for info in vits.list_voices(voices_dir)})
    found = listing[2].get(voice_id)
    return found if found is not None else vits.find_voice(voice_id, voices_dir)


def text_sentences(*, text: str) -> list[str]:
    """Normalized sentences; raises a `vits.errors.VitsInputError` subclass (with `.field`)."""
    from vits.text import prepare_sentences

    return list(prepare_sentences(text))
