"""Publishing the public results topic (`tts_contracts.results`) and the live-update notices.

Called by the event consumer after it applied an event (`event_applied`), and by the API
when a user cancels. Both are best effort after the database commit: the database stays the
source of truth; a downstream service that missed a message reads the job over the API.
"""

from __future__ import annotations

import atexit
import logging
import time
from typing import Any

from django.conf import settings
from django.urls import reverse

from tts_contracts.results import RESULTS_TOPIC_NAME, ResultFinal, ResultSegment, encode_result

from . import live
from .broadcast import Broadcaster
from .models import AudioSegment, JobStatus, SynthesisJob
from .topics import topic_name

logger = logging.getLogger(__name__)

# Results of the apply step that mean the event's effect is in the database.
_PUBLISHED_RESULTS = frozenset({"applied", "duplicate"})


def results_topic() -> str:
    return topic_name(RESULTS_TOPIC_NAME)


_producer = Broadcaster(name="results", chunking=True)  # a slow voice's segment may pass 5 MB
atexit.register(_producer.close)  # no live pulsar client at interpreter exit (it would abort)


def _send(result: ResultSegment | ResultFinal) -> None:
    _producer.send(
        service_url=settings.PULSAR_URL,
        topic=results_topic(),
        payload=encode_result(result),
        partition_key=result.job_id,
    )


def _field(event: Any, name: str) -> Any:
    """A field of a typed event (tts_contracts) or of the older event with a `data` dict."""
    if hasattr(event, name):
        return getattr(event, name)
    return (getattr(event, "data", None) or {}).get(name)


def _event_type(event: Any) -> str:
    return str(getattr(event, "kind", None) or getattr(event, "type", ""))


def publish_segment(*, job_id: str, attempt: int, first_sentence: int) -> None:
    """The stored segment (the bytes the job's WAV is assembled from) onto the results topic."""
    segment = AudioSegment.objects.filter(job_id=job_id, attempt=attempt, first_sentence=first_sentence).first()
    if segment is None:  # the job already ended and its segments were assembled and dropped
        return
    result = ResultSegment(
        job_id=str(job_id),
        attempt=attempt,
        first_sentence=segment.first_sentence,
        sentence_count=segment.sentence_count,
        sample_rate=segment.sample_rate,
        pcm=bytes(segment.pcm),
        sent_at=time.time(),
    )
    _send(result)


def _code_from_reason(reason: str) -> str:
    prefix = reason.split(":", 1)[0].strip().lower()
    return "".join(c if c.isalnum() else "_" for c in prefix)[:60] or "failed"


def publish_final(*, job: SynthesisJob) -> None:
    if not job.is_final:
        return
    error_code = None
    if job.status == JobStatus.FAILED:
        # The job's stable failure code once the model stores one (tts_contracts.FAILURE_CODES);
        # until then the reason's prefix ("synthesis failed: ...") -> "synthesis_failed".
        error_code = getattr(job, "error_code", "") or _code_from_reason(job.error)
    elif job.status == JobStatus.CANCELLED:
        error_code = "cancelled"
    result = ResultFinal(
        job_id=str(job.id),
        attempt=job.attempt,
        status=job.status,  # type: ignore[arg-type]
        sentence_count=job.sentence_count,
        sample_rate=job.sample_rate,
        duration_s=job.audio_duration_s,
        audio_url=reverse("gateway:job-audio", kwargs={"job_id": job.id})
        if job.status == JobStatus.SUCCEEDED
        else None,
        error_code=error_code,
        error=job.error,
        sent_at=time.time(),
    )
    _send(result)


def event_applied(*, event: Any, result: str) -> None:
    """The consumer's hook after one event: results onward, then wake the job's open streams."""
    if result not in _PUBLISHED_RESULTS:
        return
    job_id = str(_field(event, "job_id"))
    attempt = int(_field(event, "attempt") or 0)
    kind = _event_type(event)
    try:
        if kind == "segment":
            publish_segment(job_id=job_id, attempt=attempt, first_sentence=int(_field(event, "first_sentence")))
        elif kind in ("completed", "failed") and result == "applied":
            job = SynthesisJob.objects.filter(pk=job_id).first()
            if job is not None:
                publish_final(job=job)
    except Exception:
        logger.exception("publishing the %s result of job %s failed", kind, job_id)
    if result == "applied":
        live.notify_job_update(job_id=job_id)


def job_ended_elsewhere(*, job: SynthesisJob) -> None:
    """A job ended outside the consumer (cancel, dead letter): final result and live notice."""
    publish_final(job=job)
    live.notify_job_update(job_id=job.id)


def close() -> None:
    _producer.close()
    live.close()


def dead_letter_applied(*, job_id: str, result: str) -> None:
    if result != "applied":
        return
    try:
        job = SynthesisJob.objects.filter(pk=job_id).first()
        if job is not None:
            job_ended_elsewhere(job=job)
    except Exception:
        logger.exception("publishing the dead-lettered end of job %s failed", job_id)
