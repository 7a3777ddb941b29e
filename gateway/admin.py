"""Operator views of jobs and the outbox. Staff only; state changes go through the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from . import services
from .downloads import StoredFileResponse
from .errors import ApplicationError
from .models import EventDeadLetter, JobStatus, OutboxMessage, SynthesisJob


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


@admin.register(SynthesisJob)
class SynthesisJobAdmin(admin.ModelAdmin):
    list_display = [
        "short_id",
        "owner",
        "status",
        "error_code",
        "length_class",
        "voice",
        "progress_percent",
        "audio_duration",
        "queue_wait",
        "latency",
        "attempt",
        "queued_at",
    ]
    list_filter = ["status", "error_code", "length_class", "voice", ("queued_at", admin.DateFieldListFilter)]
    search_fields = ["text", "=id", "owner__username"]
    list_select_related = ["owner"]
    date_hierarchy = "queued_at"
    ordering = ["-queued_at"]
    actions = ["retry_jobs", "cancel_jobs"]
    fieldsets = [
        (None, {"fields": ["id", "owner", "status", "live_progress", "error_code", "error", "audio_player"]}),
        ("Input", {"fields": ["text", "voice", "params", "length_class"]}),
        (
            "Progress",
            {
                "fields": [
                    "attempt",
                    "progress",
                    "sentence_count",
                    "sentences_done",
                    "cached_sentences",
                    "agent_id",
                    "stall_republishes",
                ]
            },
        ),
        (
            "Timings",
            {
                "fields": [
                    "queued_at",
                    "started_at",
                    "first_segment_at",
                    "finished_at",
                    "last_event_at",
                    "last_heartbeat_at",
                    "queue_wait",
                    "time_to_first_segment",
                    "latency",
                    "synthesis_seconds",
                ]
            },
        ),
        ("Audio", {"fields": ["audio", "audio_duration_s", "sample_rate"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: SynthesisJob | None = None) -> list[str]:
        # Every field is read-only: status and audio change only through the services.
        names = [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]
        return names

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs come in through the API, which validates them

    def delete_model(self, request: HttpRequest, obj: SynthesisJob) -> None:
        services.job_delete(job=obj)  # removes the audio file too

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SynthesisJob]) -> None:
        for job in queryset:
            services.job_delete(job=job)

    @admin.display(description="id")
    def short_id(self, job: SynthesisJob) -> str:
        return str(job.id)[:8]

    @admin.display(description="progress")
    def progress_percent(self, job: SynthesisJob) -> str:
        return f"{job.progress * 100:.0f}%"

    @admin.display(description="audio")
    def audio_duration(self, job: SynthesisJob) -> str:
        return _seconds(job.audio_duration_s)

    @admin.display(description="queue wait")
    def queue_wait(self, job: SynthesisJob) -> str:
        return _seconds(job.queue_wait_s)

    @admin.display(description="first segment after")
    def time_to_first_segment(self, job: SynthesisJob) -> str:
        return _seconds(job.time_to_first_segment_s)

    @admin.display(description="latency")
    def latency(self, job: SynthesisJob) -> str:
        return _seconds(job.latency_s)

    class Media:
        js = ["gateway/job_live.js"]

    @admin.display(description="live progress")
    def live_progress(self, job: SynthesisJob) -> str:
        """A bar the page's script moves from the job's SSE stream (GET /api/v1/jobs/{id}/events)."""
        if job.is_final:
            return f"{job.progress * 100:.0f}%"
        return format_html(
            '<div id="job-live-progress" data-events-url="{}"><progress max="1" value="{}"></progress> '
            "<span>{}: {} sentences done</span></div>",
            reverse("gateway:job-events", kwargs={"job_id": job.pk}),
            job.progress,
            job.status,
            job.sentences_done,
        )

    @admin.display(description="player")
    def audio_player(self, job: SynthesisJob) -> str:
        if job.status != JobStatus.SUCCEEDED or not job.audio:
            return "-"
        url = reverse("admin:gateway_synthesisjob_audio", args=[job.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', url)

    def get_urls(self) -> list:
        # admin_view: staff login required, like every other admin page.
        audio_view = self.admin_site.admin_view(self.audio_view)
        return [
            path("<uuid:object_id>/audio/", audio_view, name="gateway_synthesisjob_audio"),
            *super().get_urls(),
        ]

    def audio_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = SynthesisJob.objects.filter(pk=object_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404("job not found")
        if not job.audio:
            raise Http404("the job has no audio")
        handle = services.stored_audio_open(storage=job.audio.storage, name=job.audio.name)
        return StoredFileResponse(handle, content_type="audio/wav", filename=f"{job.id}.wav")

    def _run_action(self, request: HttpRequest, queryset: QuerySet[SynthesisJob], service, verb: str) -> None:
        done, refused = 0, []
        for job in queryset:
            try:
                service(job=job)  # open streams and the results topic hear of it after commit
                done += 1
            except ApplicationError as error:
                refused.append(f"{str(job.id)[:8]}: {error.message}")
        if done:
            self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Refused: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Retry selected failed/cancelled jobs", permissions=["change"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[SynthesisJob]) -> None:
        self._run_action(request, queryset, services.job_retry, "Retried")

    @admin.action(description="Cancel selected queued/running jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[SynthesisJob]) -> None:
        self._run_action(request, queryset, services.job_cancel, "Cancelled")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "attempt", "topic", "created_at", "published_at", "attempts", "last_error"]
    list_filter = [("published_at", admin.EmptyFieldListFilter), "topic"]
    search_fields = ["=job__id"]
    readonly_fields = [
        "job",
        "attempt",
        "topic",
        "partition_key",
        "payload",
        "created_at",
        "published_at",
        "attempts",
        "last_attempt_at",
        "last_error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(EventDeadLetter)
class EventDeadLetterAdmin(admin.ModelAdmin):
    """Events the consumer could not apply: read-only evidence for an operator."""

    list_display = ["id", "event_type", "job_id", "attempt", "created_at", "error_summary"]
    list_filter = ["event_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=job_id"]
    readonly_fields = ["event_type", "job_id", "attempt", "payload_text", "error", "created_at"]
    exclude = ["payload"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EventDeadLetter | None = None) -> bool:
        return False

    @admin.display(description="error")
    def error_summary(self, record: EventDeadLetter) -> str:
        return record.error.splitlines()[0][:120] if record.error else "-"

    @admin.display(description="payload")
    def payload_text(self, record: EventDeadLetter) -> str:
        text = bytes(record.payload).decode("utf-8", errors="replace")
        return text if len(text) <= 4000 else text[:4000] + f"... ({len(text)} characters)"


from . import account_admin  # noqa: E402, F401 - registers the API key and quota admins
