"""Upper bounds on database queries per submit and per agent event: a regression that adds
round trips to the hot paths (every job pays them, on the cores that synthesize) fails here."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from gateway import services
from gateway.consumer import EventConsumer
from gateway.models import JobStatus, SynthesisJob

from .conftest import EventFactory
from .factories import SynthesisJobFactory
from .test_consumer_batches import messages, one_sentence_run

pytestmark = pytest.mark.django_db

# Measured when the bounds were set, each transaction's begin and end counted (a savepoint pair
# inside the test's transaction). A submit: 7 (key; owner lock with limits; active jobs and
# characters today in one query; job; outbox record; was 9 before the limits came with the lock,
# 8 with two usage queries; the publish after commit has its own test in test_outbox.py).
# Events: started 4 (lock, update), a job's first segment 5 (lock, insert, update; a later one
# also asks "stored already?"), completed of a short job 6 (lock, chain with its PCM, delete
# segments, update); they were 5 / 10 / 8 with a full-row save, a separate last_event_at update
# and a savepoint per segment, then 4 / 6 / 7. A one-sentence job's three events in one batch: 4
# (one transaction, one lock, one UPDATE of the job; the segment goes from the event into the
# WAV, never stored; was 11 with an UPDATE per event, 7 with the segment stored, read back and
# deleted).
SUBMIT_QUERIES = 7
EVENT_QUERIES = {"started": 4, "segment": 5, "completed": 6}
BATCH_OF_ONE_SENTENCE_JOB_QUERIES = 4


def sql_of(context: CaptureQueriesContext) -> str:
    return "\n".join(query["sql"][:160] for query in context.captured_queries)


def test_a_submit_stays_within_its_query_budget(api_client: APIClient) -> None:
    assert api_client.post("/api/v1/jobs", {"text": "Warm up."}, format="json").status_code == 202
    with CaptureQueriesContext(connection) as context:
        response = api_client.post("/api/v1/jobs", {"text": "Hello world."}, format="json")
    assert response.status_code == 202
    assert len(context) <= SUBMIT_QUERIES, sql_of(context)


@pytest.mark.parametrize("kind", ["started", "segment", "completed"])
def test_each_event_stays_within_its_query_budget(kind: str, make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    for earlier in ("started", "segment")[: ("started", "segment", "completed").index(kind)]:
        services.job_apply_event(event=make_event(earlier, job))
    with CaptureQueriesContext(connection) as context:
        assert services.job_apply_event(event=make_event(kind, job)) == "applied"
    assert len(context) <= EVENT_QUERIES[kind], sql_of(context)


def test_a_batch_of_one_jobs_events_takes_one_transaction_and_one_lock(
    make_event: EventFactory, monkeypatch: Any
) -> None:
    from gateway import consumer as consumer_module

    monkeypatch.setattr(consumer_module, "close_old_connections", lambda: None)  # keep the test transaction
    job = SynthesisJobFactory(sentence_count=1)
    with CaptureQueriesContext(connection) as context:
        EventConsumer(service_url="pulsar://unused:6650").handle_events(messages(one_sentence_run(make_event, job)))
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    assert len(context) <= BATCH_OF_ONE_SENTENCE_JOB_QUERIES, sql_of(context)
