"""Job rows, the transactional outbox and the audio segments waiting for assembly.

Only `gateway.services` changes `SynthesisJob.status`; the transition table lives here so
the services and the admin read one definition.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


# Members without explicit labels (Django derives "Short", "Queued"...) so that type
# checkers without the Django plugin still see plain strings.
class LengthClass(models.TextChoices):
    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# Forward moves only. A retry is not a move back: it starts a new attempt (services.job_retry).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class SynthesisJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="synthesis_jobs")
    text = models.TextField()
    # len(text), written with it: the daily character quota sums this instead of the texts.
    text_chars = models.PositiveIntegerField(default=0)
    voice = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    length_class = models.CharField(max_length=10, choices=LengthClass.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    sentence_count = models.PositiveIntegerField(null=True, blank=True)
    sentences_done = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    # A stable code beside the readable `error` (tts_contracts.FAILURE_CODES): `synthesis_error`,
    # `stalled`, `agent_crashed_repeatedly`, `storage_full`, `cancelled`...
    error_code = models.CharField(max_length=64, blank=True)
    audio = models.FileField(upload_to="audio/%Y/%m/%d/", blank=True)
    audio_duration_s = models.FloatField(null=True, blank=True)
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    first_segment_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    synthesis_seconds = models.FloatField(null=True, blank=True)
    cached_sentences = models.PositiveIntegerField(default=0)
    agent_id = models.CharField(max_length=200, blank=True)
    # Set whenever an event of the current attempt arrives (and on a stall republish): the
    # stalled-job watchdog republishes running jobs silent for longer than TTS_STALLED_JOB_AFTER_S.
    last_event_at = models.DateTimeField(null=True, blank=True)
    stall_republishes = models.PositiveIntegerField(
        default=0, help_text="times the watchdog re-published this attempt's job message"
    )
    # The last heartbeat of the agent holding the current attempt (consumer clock): a paused
    # job that keeps heartbeating is alive, however long it sends no audio.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # An `AudioPreview` of the current attempt is stored: streams read it, and the job's end
    # deletes it (no query for the jobs that never had one).
    preview_stored = models.BooleanField(default=False)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [
            models.Index(fields=["owner", "-queued_at"], name="job_owner_queued_idx"),
            # The active-jobs quota: a user's queued and running jobs, not their whole history.
            models.Index(fields=["owner", "status"], name="job_owner_status_idx"),
            models.Index(fields=["status"], name="job_status_idx"),
            models.Index(fields=["status", "last_event_at"], name="job_status_last_event_idx"),
            # The watchdog's "overtaken" check: later jobs of a queued job's topic.
            models.Index(fields=["length_class", "voice", "queued_at"], name="job_topic_queued_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0.0, progress__lte=1.0), name="job_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def queue_wait_s(self) -> float | None:
        return _seconds(self.queued_at, self.started_at)

    @property
    def latency_s(self) -> float | None:
        return _seconds(self.queued_at, self.finished_at)

    @property
    def time_to_first_segment_s(self) -> float | None:
        return _seconds(self.queued_at, self.first_segment_at)


def _seconds(start: object, end: object) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()  # type: ignore[operator]


class OutboxMessage(models.Model):
    """A job message written in the job's transaction; `published_at` is set on broker confirmation."""

    job = models.ForeignKey(SynthesisJob, on_delete=models.CASCADE, related_name="outbox_messages")
    attempt = models.PositiveIntegerField(default=1)
    topic = models.CharField(max_length=300)
    partition_key = models.CharField(max_length=200)
    payload = models.TextField(help_text="The JobMessage exactly as published (UTF-8 JSON).")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay scans only the (small) unpublished tail.
            models.Index(fields=["created_at"], name="outbox_unpublished_idx", condition=Q(published_at__isnull=True)),
        ]

    def __str__(self) -> str:
        state = "published" if self.published_at else "pending"
        return f"outbox {self.pk} job {self.job_id} -> {self.topic} ({state})"


class AudioSegment(models.Model):
    """PCM of one or more sentences of one attempt, kept until the job's WAV is assembled."""

    job = models.ForeignKey(SynthesisJob, on_delete=models.CASCADE, related_name="segments")
    attempt = models.PositiveIntegerField()
    first_sentence = models.PositiveIntegerField()
    sentence_count = models.PositiveIntegerField()
    sample_rate = models.PositiveIntegerField()
    pcm = models.BinaryField(help_text="16-bit little-endian mono PCM")
    audio_seconds = models.FloatField(default=0.0)
    cached_sentences = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "attempt", "first_sentence"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "attempt", "first_sentence"], name="segment_unique_job_attempt_sentence"
            ),
        ]

    def __str__(self) -> str:
        return f"segment {self.job_id}#{self.attempt}@{self.first_sentence}+{self.sentence_count}"


class AudioPreview(models.Model):
    """The first chunks of an attempt's first sentence, sent before that sentence is done: a
    stream plays them, then segment 0 from their last frame on. Never part of the WAV; deleted
    when the job ends (so before any retry)."""

    job = models.ForeignKey(SynthesisJob, on_delete=models.CASCADE, related_name="previews")
    attempt = models.PositiveIntegerField()
    sample_rate = models.PositiveIntegerField()
    pcm = models.BinaryField(help_text="16-bit little-endian mono PCM, a prefix of the attempt's first segment")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "attempt"], name="preview_unique_job_attempt")]

    def __str__(self) -> str:
        return f"preview {self.job_id}#{self.attempt}"


class EventDeadLetter(models.Model):
    """An event the consumer could not apply (a database error after its local retries, a bug):
    kept for an operator instead of blocking the subscription or retrying forever."""

    event_type = models.CharField(max_length=32)
    job_id = models.CharField(max_length=64, blank=True, db_index=True)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    payload = models.BinaryField(
        help_text=(
            "The message exactly as received; an event that came with others in one message, as it would travel alone."
        )
    )
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} of job {self.job_id or '?'} ({self.created_at:%Y-%m-%d %H:%M:%S})"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` and the jobs its first request created: a retry with the same
    key and body gets the same jobs, a different body a 409."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=32)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the endpoint and the request body")
    job_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.endpoint}, user {self.owner_id})"


from .account_models import ApiKey, UserQuota  # noqa: E402, F401 - models of this app
