"""drf-spectacular post-processing: the error responses every operation can give, and the voice enum.

The views declare their success responses; the statuses below come from layers every view
shares (authentication, throttles, quotas, parsing, negotiation), so they are added here in
one place rather than repeated on each view.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "stable machine-readable reason"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True, "description": "the offending input, dotted"},
            },
            "additionalProperties": True,
        }
    },
}

_DESCRIPTIONS = {
    "400": "invalid input (the body names the field)",
    "401": "no, or an unusable, API key",
    "404": "no such job (or not yours), or no such page",
    "406": "the Accept header excludes JSON",
    "409": "the job is not in a state that allows this, or the Idempotency-Key went with another request",
    "413": "text, batch or body too large",
    "415": "the body is not JSON",
    "429": "throttled (Retry-After) or over quota (codes quota_active_jobs, quota_daily_chars)",
}


_RETRY_AFTER = {
    "description": "seconds until the request would be accepted (throttled, quota_daily_chars)",
    "schema": {"type": "integer", "minimum": 1},
}


def _statuses(method: str, path: str, operation_id: str, has_body: bool) -> list[str]:
    statuses = ["401", "406", "429"]
    if has_body:
        statuses += ["400", "413", "415"]
    if "{" in path:
        statuses.append("404")
    if operation_id == "jobs_list":
        statuses += ["400", "404"]
    if operation_id in ("jobs_audio", "jobs_cancel"):
        statuses.append("409")
    if operation_id == "jobs_audio":
        statuses.append("400")  # an unsupported ?format= or Accept (the body lists the supported ones)
    if operation_id in ("jobs_submit", "jobs_submit_batch"):
        statuses.append("409")  # Idempotency-Key reused with another body, or in use concurrently
    return sorted(set(statuses))


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    from django.conf import settings

    from . import voices

    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            operation_id = operation.get("operationId", "")
            for code in _statuses(method, path, operation_id, "requestBody" in operation):
                response = responses.setdefault(
                    code,
                    {
                        "description": _DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
                if code == "429":
                    response["headers"] = {"Retry-After": _RETRY_AFTER}
    voice_ids = [voice.id for voice in voices.voice_list()] or [settings.TTS_DEFAULT_VOICE]
    job_input = components.get("JobInput", {}).get("properties", {})
    if "voice" in job_input:
        job_input["voice"]["enum"] = [*voice_ids, "", None]
    if "text" in job_input:
        # Enforced by the service (empty_text 400, text_too_long 413), stated here.
        job_input["text"].update(minLength=1, maxLength=settings.TTS_MAX_TEXT_CHARS, pattern=r"\S")
    batch_jobs = components.get("JobBatchInput", {}).get("properties", {}).get("jobs")
    if batch_jobs is not None:
        batch_jobs["description"] = (
            f"At most {settings.TTS_MAX_BATCH} jobs (413 batch_too_large, checked before the items) and "
            f"{settings.TTS_MAX_BATCH_CHARS} characters of text in all; each job counts against the submit rate."
        )
    return result
