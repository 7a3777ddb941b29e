"""API keys: create (the key is returned once), revoke, and resolve a presented key.

Only the SHA-256 of a key is stored (see `ApiKey`); a database dump holds nothing a client
could authenticate with.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .account_models import ApiKey
from .errors import ApplicationError

logger = logging.getLogger(__name__)

KEY_PREFIX = "tts_"
_PREFIX_CHARS = 12  # "tts_" + 8 random characters: enough to tell keys apart in the admin
# last_used_at is a hint for operators, not an audit log: write it at most once a minute
# per key so that every request does not become a database write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


def api_key_create(
    *, owner: AbstractBaseUser, name: str, expires_at: datetime | None = None, raw_key: str | None = None
) -> tuple[ApiKey, str]:
    """A new key for `owner`; returns the row and the key, which is never available again.

    `raw_key` is only for migrating a legacy plaintext token into a hashed key.
    """
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("the expiry must be in the future", code="invalid", field="expires_at")
    raw_key = raw_key or KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        owner=owner,
        name=name[:100],
        prefix=raw_key[:_PREFIX_CHARS],
        hashed_key=hash_key(raw_key),
        expires_at=expires_at,
    )
    logger.info("API key %s (%s) created for user %s", key.prefix, key.name, owner.pk)
    return key, raw_key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke at once; idempotent (a revoked key keeps its first revocation time)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        logger.info("API key %s (%s) of user %s revoked", key.prefix, key.name, key.owner_id)
    return key


def api_key_resolve(*, raw_key: str) -> ApiKey | None:
    """The usable key matching `raw_key` (with its owner), or None: unknown, revoked or expired."""
    if not raw_key or len(raw_key) > 200:
        return None
    key = ApiKey.objects.select_related("owner").filter(hashed_key=hash_key(raw_key)).first()
    now = timezone.now()
    if key is None or not key.is_usable(now=now):
        return None
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
