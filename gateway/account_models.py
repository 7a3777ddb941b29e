"""Per-user access: hashed API keys and per-user quota overrides.

Imported by `gateway.models` so Django sees them as models of the `gateway` app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """An API key stored only as its SHA-256: the key itself is shown once, at creation.

    Keys are 256-bit random strings, so a fast hash is enough (no salt or stretching is
    needed against guessing a random 43-character secret) and checking one costs
    microseconds per request, where PBKDF2 would cost a web worker ~0.3 s per request.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="what the key is for, e.g. 'ci' or 'laptop'")
    prefix = models.CharField(max_length=16, db_index=True, help_text="first characters of the key, to recognise it")
    hashed_key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key (hex)")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never expires")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.owner})"

    def is_usable(self, *, now: object | None = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now  # type: ignore[operator]


class UserQuota(models.Model):
    """A user's own limits; an empty field means the default from the settings."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tts_quota")
    max_active_jobs = models.PositiveIntegerField(
        null=True, blank=True, help_text="jobs queued or running at once; empty: TTS_QUOTA_MAX_ACTIVE_JOBS"
    )
    max_chars_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="characters submitted per UTC day; empty: TTS_QUOTA_MAX_CHARS_PER_DAY"
    )

    class Meta:
        verbose_name = "user quota"

    def __str__(self) -> str:
        return f"quota of {self.user}"
