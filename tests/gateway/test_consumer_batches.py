"""Several waiting events applied in one transaction: same outcome as one by one, hooks in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import metrics
from gateway.consumer import EventConsumer
from gateway.models import AudioSegment, EventDeadLetter, JobStatus, SynthesisJob
from gateway.services import events as events_module
from tts_contracts import JobEvent, SegmentEvent, StartedEvent, decode_event, encode_events
from tts_contracts.results import RESULTS_TOPIC_NAME, ResultFinal, ResultSegment, decode_result

from .conftest import EventFactory, RecordingPublisher
from .factories import SynthesisJobFactory
from .test_consumer_handling import FakeMessage

pytestmark = pytest.mark.django_db


def one_sentence_run(make_event: EventFactory, job: SynthesisJob) -> list[JobEvent]:
    return [make_event("started", job), make_event("segment", job), make_event("completed", job)]


def messages(events: list[JobEvent]) -> list[FakeMessage]:
    return [FakeMessage(event.to_bytes()) for event in events]


def results_sent(recorder: RecordingPublisher) -> list[tuple[str, str]]:
    """(kind, job id) of each results-topic message, in the order sent."""
    sent = []
    for topic, payload in recorder.sent:
        if topic.endswith(RESULTS_TOPIC_NAME):
            result = decode_result(payload)
            kind = "segment" if isinstance(result, ResultSegment) else "final"
            assert isinstance(result, ResultSegment | ResultFinal)
            sent.append((kind, result.job_id))
    return sent


def test_a_batch_finishes_every_job_and_publishes_segments_before_each_final_result(
    handler: EventConsumer,
    make_event: EventFactory,
    broadcasts: RecordingPublisher,
    django_capture_on_commit_callbacks: Any,
) -> None:
    first, second = SynthesisJobFactory(sentence_count=1), SynthesisJobFactory(sentence_count=1)
    events = one_sentence_run(make_event, first) + one_sentence_run(make_event, second)

    with django_capture_on_commit_callbacks(execute=True):
        acks = handler.handle_events(messages(events))

    assert acks == [True] * 6
    for job in (first, second):
        done = SynthesisJob.objects.get(pk=job.pk)
        assert done.status == JobStatus.SUCCEEDED
        assert done.audio_duration_s == pytest.approx(0.25, abs=1e-3)
        assert done.last_event_at is not None
    assert AudioSegment.objects.count() == 0
    # The segment was stored and dropped within the batch: published from the event's bytes.
    assert results_sent(broadcasts) == [
        ("segment", str(first.id)),
        ("final", str(first.id)),
        ("segment", str(second.id)),
        ("final", str(second.id)),
    ]
    # One "look again" notice per job for its three events and its end, all after one commit
    # (was four per job, then two).
    notices = [json.loads(payload)["job_id"] for topic, payload in broadcasts.sent if topic.endswith("job-updates")]
    assert notices == [str(first.id), str(second.id)]


@pytest.mark.django_db(transaction=True)
def test_a_committed_batch_announces_each_job_once_and_stops_coalescing(
    handler: EventConsumer, make_event: EventFactory, broadcasts: RecordingPublisher
) -> None:
    """The hooks run at the batch's own commit here (no test transaction around it)."""
    from gateway import live

    first, second = SynthesisJobFactory(sentence_count=1), SynthesisJobFactory(sentence_count=1)
    events = one_sentence_run(make_event, first) + one_sentence_run(make_event, second)

    assert handler.handle_events(messages(events)) == [True] * 6

    def notices() -> list[str]:
        return [json.loads(payload)["job_id"] for topic, payload in broadcasts.sent if topic.endswith("job-updates")]

    assert SynthesisJob.objects.filter(status=JobStatus.SUCCEEDED).count() == 2
    assert notices() == [str(first.id), str(second.id)]
    live.notify_job_update(job_id=str(first.id))  # a later change (a retry, a cancel) is announced
    assert notices() == [str(first.id), str(second.id), str(first.id)]


def test_a_repeated_event_in_one_batch_is_a_duplicate(handler: EventConsumer, make_event: EventFactory) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    segment = make_event("segment", job)

    assert handler.handle_events(messages([make_event("started", job), segment, segment])) == [True] * 3

    running = SynthesisJob.objects.get(pk=job.pk)
    assert running.status == JobStatus.RUNNING
    assert running.sentences_done == 1
    assert AudioSegment.objects.filter(job=job).count() == 1


def break_started_of(bad: SynthesisJob, monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying a `started` of `bad` raises, as a bug no retry fixes would: its batch rolls back."""
    apply_started = events_module._apply_started

    def fails_for_bad(*, job: SynthesisJob, event: StartedEvent) -> str:
        if job.pk == bad.pk:
            raise KeyError("a bug no retry fixes")
        return apply_started(job=job, event=event)

    monkeypatch.setattr(events_module, "_apply_started", fails_for_bad)


def test_a_failing_event_falls_back_to_one_by_one_and_only_it_is_dead_lettered(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = SynthesisJobFactory(sentence_count=1), SynthesisJobFactory(sentence_count=1)
    break_started_of(bad, monkeypatch)
    events = [make_event("started", good), make_event("started", bad), make_event("segment", good)]
    applied = metrics.EVENTS_APPLIED.labels(type="started", result="applied")
    before = applied._value.get()

    assert handler.handle_events(messages(events)) == [True, True, True]  # the bad one dead-lettered, acked

    assert applied._value.get() - before == 1  # the good start counted once: not by the rolled-back batch

    assert SynthesisJob.objects.get(pk=good.pk).sentences_done == 1  # applied once, not twice
    assert AudioSegment.objects.filter(job=good).count() == 1
    assert SynthesisJob.objects.get(pk=bad.pk).status == JobStatus.QUEUED
    assert EventDeadLetter.objects.get().job_id == str(bad.id)


def test_a_run_in_one_message_finishes_its_job_in_one_transaction(
    handler: EventConsumer,
    make_event: EventFactory,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As agents send a short job: `started`, segment and `completed` in one message, one ack.
    Applied, its events are never encoded again (each one's own bytes are for a dead letter)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = SynthesisJobFactory(sentence_count=1)
    run = one_sentence_run(make_event, job)
    payload = encode_events(run)
    encoded: list[str] = []
    original_to_bytes = JobEvent.to_bytes
    monkeypatch.setattr(JobEvent, "to_bytes", lambda event: encoded.append(event.type) or original_to_bytes(event))

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as context:
        assert handler.handle_events([FakeMessage(payload)]) == [True]

    assert encoded == []

    done = SynthesisJob.objects.get(pk=job.pk)
    assert (done.status, done.sentences_done) == (JobStatus.SUCCEEDED, 1)
    segment = run[1]
    assert isinstance(segment, SegmentEvent) and _wav_frames(done) == segment.pcm
    assert len([query for query in context.captured_queries if "FOR UPDATE" in query["sql"]]) == 1
    assert not [query["sql"] for query in context.captured_queries if "gateway_audiosegment" in query["sql"]]


def test_an_event_failing_in_a_message_of_several_is_dead_lettered_as_its_own_bytes(
    handler: EventConsumer, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One by one after the batch rolled back: the bad job's `started` becomes a dead letter that
    reads back as that one event; the good job's message is applied whole."""
    good, bad = SynthesisJobFactory(sentence_count=1), SynthesisJobFactory(sentence_count=1)
    break_started_of(bad, monkeypatch)
    bad_run = one_sentence_run(make_event, bad)

    acks = handler.handle_events(
        [FakeMessage(encode_events(one_sentence_run(make_event, good))), FakeMessage(encode_events(bad_run))]
    )

    assert acks == [True, True]  # the bad event dead-lettered, its message acked
    assert SynthesisJob.objects.get(pk=good.pk).status == JobStatus.SUCCEEDED
    letter = EventDeadLetter.objects.get()
    assert (letter.job_id, letter.event_type) == (str(bad.id), "started")
    assert decode_event(bytes(letter.payload)) == bad_run[0]


def test_a_message_with_an_event_that_breaks_the_contract_is_rejected_whole(
    handler: EventConsumer, make_event: EventFactory
) -> None:
    """Acked and applied in no part: its other events would arrive without the one before them."""
    job = SynthesisJobFactory(sentence_count=1)
    items = [json.loads(event.to_bytes()) for event in one_sentence_run(make_event, job)]
    items[1]["data"]["sample_rate"] = -1
    payload = json.dumps({"schema": 1, "type": "events", "events": items}).encode()
    rejected = metrics.EVENTS_APPLIED.labels(type="started", result="rejected")
    before = rejected._value.get()

    assert handler.handle_events([FakeMessage(payload)]) == [True]

    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    assert rejected._value.get() - before == 1  # labelled as its first event claims


def test_a_success_applied_again_after_a_rolled_back_batch_is_logged_and_timed_once(
    handler: EventConsumer,
    make_event: EventFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The log's success lines are the record operators (and bench/chaos.py) count: one per job,
    as in the database, even when the batch that first completed it was rolled back."""
    good, bad = SynthesisJobFactory(sentence_count=1), SynthesisJobFactory(sentence_count=1)
    break_started_of(bad, monkeypatch)
    latency = metrics.JOB_LATENCY.labels(length_class=good.length_class)
    observed_before = sum(bucket.get() for bucket in latency._buckets)
    events = [*one_sentence_run(make_event, good), make_event("started", bad)]

    with caplog.at_level("INFO", logger="gateway.services.events"), django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_events(messages(events)) == [True] * 4

    assert SynthesisJob.objects.get(pk=good.pk).status == JobStatus.SUCCEEDED
    success_lines = [record for record in caplog.records if f"job {good.id} succeeded" in record.getMessage()]
    assert len(success_lines) == 1, [record.getMessage() for record in caplog.records]
    assert sum(bucket.get() for bucket in latency._buckets) - observed_before == 1


def test_an_undecodable_payload_in_a_batch_is_acked_and_the_rest_applied(
    handler: EventConsumer, make_event: EventFactory
) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    batch = [FakeMessage(b"not json"), *messages(one_sentence_run(make_event, job))]

    assert handler.handle_events(batch) == [True] * 4
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def _wav_frames(job: SynthesisJob) -> bytes:
    import wave

    with job.audio.open("rb") as handle, wave.open(handle) as wav:
        return wav.readframes(wav.getnframes())


def test_segments_completed_in_their_own_batch_go_to_the_wav_without_being_stored(
    handler: EventConsumer, make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    """No INSERT, read-back or DELETE of the PCM: the WAV is written from the events' bytes, in
    sentence order, a repeated segment counted once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = SynthesisJobFactory(sentence_count=2)
    first = make_event("segment", job, first_sentence=0)
    second = make_event("segment", job, first_sentence=1)
    events = [make_event("started", job), second, first, second, make_event("completed", job)]

    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as context:
        assert handler.handle_events(messages(events)) == [True] * 5

    done = SynthesisJob.objects.get(pk=job.pk)
    assert (done.status, done.sentences_done, done.progress) == (JobStatus.SUCCEEDED, 2, 1.0)
    assert done.first_segment_at is not None
    assert _wav_frames(done) == first.pcm + second.pcm
    assert not [query["sql"] for query in context.captured_queries if "gateway_audiosegment" in query["sql"]]


def test_a_batch_of_one_job_locks_its_row_without_sorting(
    handler: EventConsumer, make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    """One job: a primary-key lookup, without the model's default ORDER BY; several: in key order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def locking_reads(events: list[JobEvent]) -> list[str]:
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as context:
            assert handler.handle_events(messages(events)) == [True] * len(events)
        return [query["sql"] for query in context.captured_queries if "FOR UPDATE" in query["sql"]]

    job, other = SynthesisJobFactory(), SynthesisJobFactory()
    [one] = locking_reads([make_event("started", job)])
    assert "ORDER BY" not in one
    [both] = locking_reads([make_event("started", other), make_event("segment", job, first_sentence=0)])
    assert 'ORDER BY "gateway_synthesisjob"."id" ASC' in both


def test_held_segments_are_stored_when_their_completion_finds_the_audio_incomplete(
    handler: EventConsumer, make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    """Sentence 1 of 2 was lost: the job message is re-sent, and the segment that did arrive is
    stored for the replay, which then completes the job from the database."""
    job = SynthesisJobFactory(sentence_count=2)
    first = make_event("segment", job, first_sentence=0)
    with django_capture_on_commit_callbacks(execute=False):
        assert (
            handler.handle_events(messages([make_event("started", job), first, make_event("completed", job)]))
            == [True] * 3
        )

    waiting = SynthesisJob.objects.get(pk=job.pk)
    assert (waiting.status, waiting.sentences_done, waiting.stall_republishes) == (JobStatus.RUNNING, 1, 1)
    assert bytes(AudioSegment.objects.get(job=job, first_sentence=0).pcm) == first.pcm

    second = make_event("segment", job, first_sentence=1)
    replay = [make_event("segment", job, first_sentence=0), second, make_event("completed", job)]
    with django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_events(messages(replay)) == [True] * 3  # stored already: the usual path

    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED
    assert _wav_frames(done) == first.pcm + second.pcm
    assert AudioSegment.objects.filter(job=job).count() == 0


def test_a_job_with_a_segment_stored_by_an_earlier_batch_completes_from_the_database(
    handler: EventConsumer, make_event: EventFactory, django_capture_on_commit_callbacks: Any
) -> None:
    job = SynthesisJobFactory(sentence_count=2)
    first = make_event("segment", job, first_sentence=0)
    second = make_event("segment", job, first_sentence=1)
    assert handler.handle_events(messages([make_event("started", job), first])) == [True, True]
    assert AudioSegment.objects.filter(job=job).count() == 1  # no completion in sight: stored

    with django_capture_on_commit_callbacks(execute=True):
        assert handler.handle_events(messages([second, make_event("completed", job)])) == [True, True]

    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED
    assert _wav_frames(done) == first.pcm + second.pcm
