"""`JobEnded` notices to the agents: an agent holding a job that ended (cancelled, failed,
succeeded) stops it within a sentence and drops its pending messages unsynthesized.

Best effort, after commit: an optimization only. Correctness does not depend on it (agents claim
jobs before working on them, and the gateway ignores events of a job that already ended).
"""

from __future__ import annotations

import logging

from django.db import transaction

from tts_contracts import JobEnded

from ..models import SynthesisJob
from ..publisher import get_publisher, service_topics

logger = logging.getLogger(__name__)


def job_ended_notify(*, job: SynthesisJob) -> None:
    """Publish `JobEnded` for the job's current attempt on the control topic once committed."""
    notice = JobEnded(job_id=str(job.id), attempt=job.attempt, status=job.status)

    def publish_job_ended() -> None:
        try:
            get_publisher().send(
                topic=service_topics().control_topic,
                payload=notice.to_bytes(),
                partition_key=notice.job_id,
                respect_backoff=True,  # a broker outage must not slow down every cancel
            )
        except Exception as error:  # best effort: the claim and stale-event checks keep it correct
            logger.info("job %s: %s notice not published: %s", notice.job_id, notice.status, error)

    transaction.on_commit(publish_job_ended, robust=True)
