"""Publishing the public results topic (`tts_contracts.results`) and the live-update notices.

Two hooks, both best effort and run after the database commit (the database stays the source
of truth; a downstream service that missed a message reads the job over the API):

- `event_applied`: the event consumer, after `services.job_apply_event` returned (its
  transaction committed): a stored segment goes onto the results topic, and the job's open
  streams are woken.
- `job_ended` / `job_requeued`: registered with `transaction.on_commit` by the services when a
  job reaches a final state (consumer, dead letter, watchdog, cancel from API or admin) or is
  retried: the final result, and a notice that ends or restarts the job's open streams.
"""

from __future__ import annotations

import atexit
import logging
import time
import uuid

from django.conf import settings

from tts_contracts import JobEvent, SegmentEvent
from tts_contracts.results import RESULTS_TOPIC_NAME, ResultFinal, ResultSegment, encode_result

from . import live
from .broadcast import Broadcaster
from .links import job_path
from .models import AudioSegment, JobStatus, SynthesisJob
from .publisher import service_topics

logger = logging.getLogger(__name__)

# Results of the apply step that mean the event's effect is in the database.
_PUBLISHED_RESULTS = frozenset({"applied", "duplicate"})


def results_topic() -> str:
    return service_topics().topic(RESULTS_TOPIC_NAME)


_producer = Broadcaster(name="results", chunking=True)  # a slow voice's segment may pass 5 MB
atexit.register(_producer.close)  # no live pulsar client at interpreter exit (it would abort)


def _send(result: ResultSegment | ResultFinal) -> None:
    _producer.send(
        service_url=settings.PULSAR_URL,
        auth_token=settings.PULSAR_AUTH_TOKEN,
        topic=results_topic(),
        payload=encode_result(result),
        partition_key=result.job_id,
    )


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


def _segment_result(event: SegmentEvent) -> ResultSegment:
    return ResultSegment(
        job_id=event.job_id,
        attempt=event.attempt,
        first_sentence=event.first_sentence,
        sentence_count=event.sentence_count,
        sample_rate=event.sample_rate,
        pcm=bytes(event.pcm),
        sent_at=time.time(),
    )


def publish_final(*, job: SynthesisJob) -> None:
    if not job.is_final:
        return
    # The job's stable code (tts_contracts.FAILURE_CODES, or "cancelled"); none on success.
    error_code = None if job.status == JobStatus.SUCCEEDED else (job.error_code or job.status)
    result = ResultFinal(
        job_id=str(job.id),
        attempt=job.attempt,
        status=job.status,  # type: ignore[arg-type]
        sentence_count=job.sentence_count,
        sample_rate=job.sample_rate,
        duration_s=job.audio_duration_s,
        audio_url=job_path("audio", job.id) if job.status == JobStatus.SUCCEEDED else None,
        error_code=error_code,
        error=job.error,
        sent_at=time.time(),
    )
    _send(result)


def event_applied(*, event: JobEvent, result: str, notify: bool = True) -> None:
    """The consumer's hook after one event was applied and committed: a stored segment onto the
    results topic (a duplicate too: the first delivery may have stopped before publishing), then
    wake the job's open streams (unless `notify` is False: the caller sends one notice for several
    events). Final results come from `job_ended`, on the ending commit."""
    if result not in _PUBLISHED_RESULTS:
        return
    if isinstance(event, SegmentEvent):
        try:
            if result == "applied":  # stored as it came: publish the event's own bytes, no read back
                _send(_segment_result(event))
            else:  # a duplicate: what was stored first (a redelivery may have synthesized anew)
                publish_segment(job_id=event.job_id, attempt=event.attempt, first_sentence=event.first_sentence)
        except Exception:
            logger.exception("publishing segment %d of job %s failed", event.first_sentence, event.job_id)
    if result == "applied" and notify:
        live.notify_job_update(job_id=event.job_id)


def job_ended(*, job_id: uuid.UUID | str, job: SynthesisJob | None = None) -> None:
    """After the commit that ended job `job_id`: its final result, and a notice to its streams.

    `job`: the row object the ending transaction saved, read at commit (no query); without it the
    row is read back.
    """
    try:
        if job is None:
            job = SynthesisJob.objects.defer("text").filter(pk=job_id).first()  # the result carries no text
        if job is not None:
            publish_final(job=job)
    except Exception:
        logger.exception("publishing the final result of job %s failed", job_id)
    live.notify_job_update(job_id=job_id)


def job_requeued(*, job_id: uuid.UUID | str) -> None:
    """After the commit of a retry: the streams of the old attempt end (`retried`)."""
    live.notify_job_update(job_id=job_id)


def close() -> None:
    _producer.close()
    live.close()
