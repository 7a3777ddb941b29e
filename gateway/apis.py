"""The REST API (/api/v1/): thin views that parse input, call a service or selector, render output."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import formats, selectors, services
from .downloads import StoredFileResponse
from .errors import ApplicationError
from .input_serializers import JobBatchInputSerializer, JobInputSerializer, batch_item_count
from .links import job_links
from .models import JobStatus, SynthesisJob
from .retention import job_expires_at

# --- Shared serializers ---------------------------------------------------------------------


class JobOutputSerializer(serializers.ModelSerializer):
    timings = serializers.SerializerMethodField()
    audio = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    text_chars = serializers.SerializerMethodField()
    agent_id = serializers.SerializerMethodField(help_text="staff only: the agent that ran the job; null for others")
    expires_at = serializers.SerializerMethodField(help_text="when retention deletes the job and its audio")

    class Meta:
        model = SynthesisJob
        fields = [
            "id",
            "status",
            "length_class",
            "voice",
            "params",
            "text_chars",
            "progress",
            "sentence_count",
            "sentences_done",
            "attempt",
            "agent_id",
            "error",
            "error_code",
            "queued_at",
            "started_at",
            "first_segment_at",
            "finished_at",
            "expires_at",
            "timings",
            "audio",
            "links",
        ]

    def get_text_chars(self, job: SynthesisJob) -> int:
        return len(job.text)

    def _staff(self) -> bool:
        request = self.context.get("request")
        return bool(request and request.user and request.user.is_staff)

    def get_agent_id(self, job: SynthesisJob) -> str | None:
        return job.agent_id if self._staff() else None

    def get_expires_at(self, job: SynthesisJob) -> datetime | None:
        return job_expires_at(job=job)

    def get_timings(self, job: SynthesisJob) -> dict[str, float | None]:
        return {
            "queue_wait_s": job.queue_wait_s,
            "time_to_first_segment_s": job.time_to_first_segment_s,
            "latency_s": job.latency_s,
            "synthesis_s": job.synthesis_seconds,
        }

    def get_audio(self, job: SynthesisJob) -> dict[str, Any] | None:
        if job.status != JobStatus.SUCCEEDED:
            return None
        audio = {"duration_s": job.audio_duration_s, "sample_rate": job.sample_rate, "content_type": "audio/wav"}
        if self._staff():  # it would tell a user what other users synthesized recently
            audio["cached_sentences"] = job.cached_sentences
        return audio

    def get_links(self, job: SynthesisJob) -> dict[str, str]:
        return job_links(job_id=job.id, request=self.context["request"])

    def to_representation(self, instance: SynthesisJob) -> dict[str, Any]:
        """The dict the declared fields give (same keys, order, values and types; a test compares
        it with `ModelSerializer.to_representation` for every status), without building the
        fields: DRF builds a ModelSerializer's fields anew for each instance, about a millisecond
        of a submit's CPU. Update it with `Meta.fields`."""
        job = instance
        return {
            "id": str(job.id),
            "status": _string_or_none(job.status),
            "length_class": _string_or_none(job.length_class),
            "voice": _string_or_none(job.voice),
            "params": job.params,
            "text_chars": self.get_text_chars(job),
            "progress": None if job.progress is None else float(job.progress),
            "sentence_count": None if job.sentence_count is None else int(job.sentence_count),
            "sentences_done": None if job.sentences_done is None else int(job.sentences_done),
            "attempt": None if job.attempt is None else int(job.attempt),
            "agent_id": self.get_agent_id(job),
            "error": _string_or_none(job.error),
            "error_code": _string_or_none(job.error_code),
            "queued_at": _DATETIME.to_representation(job.queued_at),
            "started_at": _DATETIME.to_representation(job.started_at),
            "first_segment_at": _DATETIME.to_representation(job.first_segment_at),
            "finished_at": _DATETIME.to_representation(job.finished_at),
            "expires_at": self.get_expires_at(job),
            "timings": self.get_timings(job),
            "audio": self.get_audio(job),
            "links": self.get_links(job),
        }


# What ModelSerializer makes of a model's DateTimeField; stateless, so one serves every job.
_DATETIME = serializers.DateTimeField(read_only=True)


def _string_or_none(value: object) -> str | None:
    """A CharField's (or a choice's) output: a plain str ("queued", not `JobStatus.QUEUED`)."""
    return None if value is None else str(value)


def _job_data(job: SynthesisJob, request: Request) -> dict[str, Any]:
    return dict(JobOutputSerializer(job, context={"request": request}).data)


# --- Jobs -----------------------------------------------------------------------------------

_IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key and body returns the same job(s); another body with the key is 409.",
)


def _submit(
    request: Request, endpoint: str, submit: Callable[[], list[SynthesisJob]]
) -> tuple[list[SynthesisJob], bool]:
    """Run `submit`, once per `Idempotency-Key` when the client sent one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return submit(), False
    return services.job_submit_idempotent(
        owner=request.user, key=key, endpoint=endpoint, data=request.data, submit=submit
    )


def _replay_header(replayed: bool) -> dict[str, str]:
    return {"Idempotent-Replayed": "true"} if replayed else {}


class JobPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = JobOutputSerializer(many=True)


class JobListCreateApi(APIView):
    throttle_scope = "submit"  # POST; GET is a read

    class Pagination(PageNumberPagination):
        page_size_query_param = "page_size"
        max_page_size = 100

    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            OpenApiParameter("status", enum=JobStatus.values, required=False),
            OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="404 past the last page"),
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 100}),
        ],
        responses=JobPageSerializer,
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.job_list(user=request.user, status=request.query_params.get("status") or None)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        data = JobOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="jobs_submit",
        request=JobInputSerializer,
        parameters=[_IDEMPOTENCY_PARAMETER],
        responses={202: JobOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = JobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        (job,), replayed = _submit(request, "jobs", lambda: [services.job_submit(owner=request.user, **fields)])
        data = _job_data(job, request)
        headers = {"Location": data["links"]["self"], **_replay_header(replayed)}
        return Response(data, status=status.HTTP_202_ACCEPTED, headers=headers)


class JobBatchApi(APIView):
    throttle_scope = "submit"
    throttle_cost = staticmethod(batch_item_count)  # one unit per job

    @extend_schema(
        operation_id="jobs_submit_batch",
        parameters=[_IDEMPOTENCY_PARAMETER],
        request=JobBatchInputSerializer,
        responses={202: inline_serializer("JobBatchOutput", fields={"jobs": JobOutputSerializer(many=True)})},
    )
    def post(self, request: Request) -> Response:
        serializer = JobBatchInputSerializer(data=request.data)  # checks the cap before the items
        serializer.is_valid(raise_exception=True)
        items = [services.JobRequest(**item) for item in serializer.validated_data["jobs"]]
        jobs, replayed = _submit(
            request, "jobs/batch", lambda: services.job_submit_batch(owner=request.user, items=items)
        )
        return Response(
            {"jobs": [_job_data(job, request) for job in jobs]},
            status=status.HTTP_202_ACCEPTED,
            headers=_replay_header(replayed),
        )


class JobDetailApi(APIView):
    @extend_schema(operation_id="jobs_retrieve", responses=JobOutputSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        return Response(_job_data(job, request))


class JobCancelApi(APIView):
    @extend_schema(operation_id="jobs_cancel", request=None, responses=JobOutputSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        job = services.job_cancel(job=job)  # ends open streams and publishes the final result on commit
        return Response(_job_data(job, request))


class _JsonOnlyNegotiation(BaseContentNegotiation):
    """Ignore Accept (a client may ask for audio/wav): errors are JSON, the audio is a file."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class JobAudioApi(APIView):
    content_negotiation_class = _JsonOnlyNegotiation
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="jobs_audio",
        parameters=[OpenApiParameter("format", enum=list(formats.SUPPORTED), required=False)],
        # 400 (unsupported format) and 409 (not ready) with the JSON error body: gateway/schema.py.
        responses={(200, fmt.content_type): bytes for fmt in formats.FORMATS.values()},
        description=(
            "The audio of a succeeded job: `?format=` wav (default), flac, mp3, opus or pcm (raw 16-bit), or "
            "the same by `Accept`; 400 lists the supported formats; 409 with the job's status before."
        ),
    )
    def get(self, request: Request, job_id: str) -> StoredFileResponse:
        job = selectors.job_get(user=request.user, job_id=job_id)
        fmt = formats.negotiate(query_format=request.query_params.get("format"), accept=request.headers.get("Accept"))
        if job.status != JobStatus.SUCCEEDED or not job.audio:
            raise ApplicationError(
                f"the audio is not available: the job is {job.status}",
                code="audio_not_ready",
                field="status",
                status=409,
                extra={"status": job.status},
            )
        if fmt.name == "pcm":
            return _pcm_response(job)
        name, _ = services.job_audio_encode(job=job, fmt=fmt)  # stored once, reused by later downloads
        return StoredFileResponse(
            services.stored_audio_open(storage=job.audio.storage, name=name),
            content_type=fmt.content_type,
            filename=f"{job.id}.{fmt.extension}",
        )


def _pcm_response(job: SynthesisJob) -> StoredFileResponse:
    """Raw 16-bit mono PCM: the stored WAV without its 44-byte header (written by `wave`)."""
    handle = services.stored_audio_open(storage=job.audio.storage, name=job.audio.name)
    handle.seek(44)
    response = StoredFileResponse(handle, content_type="audio/pcm", filename=f"{job.id}.pcm")
    response["X-Sample-Rate"] = str(job.sample_rate)
    return response


# --- Validation and voices ------------------------------------------------------------------


class ValidateApi(APIView):
    throttle_scope = "validate"

    class ValidateOutputSerializer(serializers.Serializer):
        normalized_text = serializers.CharField()
        sentences = serializers.ListField(child=serializers.CharField())
        sentence_count = serializers.IntegerField()
        characters = serializers.IntegerField()
        length_class = serializers.CharField()
        voice = serializers.CharField()
        params = serializers.DictField()
        estimated_duration_s = serializers.FloatField()

    @extend_schema(operation_id="validate", request=JobInputSerializer, responses=ValidateOutputSerializer)
    def post(self, request: Request) -> Response:
        serializer = JobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job_input = services.job_input_validate(**serializer.validated_data)
        estimate = services.job_input_estimate_seconds(job_input=job_input)
        data = {
            "normalized_text": job_input.normalized_text,
            "sentences": job_input.sentences,
            "sentence_count": len(job_input.sentences),
            "characters": len(job_input.text),
            "length_class": job_input.length_class,
            "voice": job_input.voice,
            "params": job_input.params,
            "estimated_duration_s": round(estimate, 2),
        }
        return Response(self.ValidateOutputSerializer(data).data)


class VoiceListApi(APIView):
    class VoiceOutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        language = serializers.CharField()
        sample_rate = serializers.IntegerField()
        num_speakers = serializers.IntegerField()
        quality = serializers.CharField(allow_null=True)
        model_checksum = serializers.CharField(help_text="sha256 of the model file")
        default = serializers.BooleanField()

    @extend_schema(operation_id="voices_list", responses=VoiceOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(self.VoiceOutputSerializer(selectors.voice_list(), many=True).data)
