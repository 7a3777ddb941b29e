"""The event consumer's loop against the real broker: events in, a valid WAV out."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulsar
import pytest
import soundfile
from django.core.management import call_command
from django.db import connection

from devstack.broker import EmbeddedBroker, free_port
from gateway.models import JobStatus, SynthesisJob
from tts_contracts import JobEvent, JobMessage

from ..waiting import wait_until
from .conftest import SAMPLE_RATE, EventFactory, sine_pcm
from .factories import SynthesisJobFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(pulsar_broker: EmbeddedBroker, settings: Any, topic_prefix: str) -> EmbeddedBroker:
    settings.PULSAR_URL = pulsar_broker.url
    return pulsar_broker


@pytest.fixture
def send(broker: EmbeddedBroker, topic_prefix: str) -> Iterator[Any]:
    """Publish like an agent: events (or dead letters) with partition key = job id."""
    client = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    producers: dict[str, pulsar.Producer] = {}

    def publish(item: JobEvent | JobMessage, *, topic: str = "events") -> None:
        name = f"persistent://public/default/{topic_prefix}-{topic}"
        if name not in producers:
            producers[name] = client.create_producer(name)
        producers[name].send(item.to_bytes(), partition_key=item.job_id)

    yield publish
    client.close()


def run_consumer(*, seconds: float) -> None:
    call_command("run_event_consumer", "--max-seconds", str(seconds), "--no-relay", "--metrics-port", "0")


def test_consumer_applies_events_and_writes_the_wav(send: Any, make_event: EventFactory, media_root: Any) -> None:
    job = SynthesisJobFactory(sentence_count=3)
    pcm = [sine_pcm(seconds=0.2, frequency=250 + 120 * index) for index in range(3)]
    send(make_event("started", job))
    for index in (0, 2, 1):  # out of order on the wire
        send(make_event("segment", job, first_sentence=index, pcm=pcm[index]))
    send(make_event("segment", job, first_sentence=1, pcm=pcm[1]))  # duplicate
    send(make_event("completed", job))
    send(make_event("completed", job))  # duplicate

    run_consumer(seconds=4)

    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.audio_duration_s == pytest.approx(0.6, abs=1e-3)
    with done.audio.open("rb") as handle:
        audio, rate = soundfile.read(io.BytesIO(handle.read()), dtype="int16")
    info = soundfile.info(done.audio.path)
    assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
    assert rate == SAMPLE_RATE
    assert audio.tobytes() == b"".join(pcm)
    assert len(list(media_root.rglob("*.wav"))) == 1


def test_consumer_fails_dead_lettered_jobs(send: Any, settings: Any) -> None:
    settings.TTS_MAX_ATTEMPTS = 3
    job = SynthesisJobFactory(status=JobStatus.QUEUED, length_class="long")
    message = JobMessage(job_id=str(job.id), attempt=1, text=job.text, voice=job.voice, length_class="long")
    send(message, topic="jobs-long-dlq")
    run_consumer(seconds=3)
    failed = SynthesisJob.objects.get(pk=job.pk)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "agent_crashed_repeatedly")
    assert failed.error.startswith("no agent finished the job in 30 deliveries")


def test_consumer_process_exports_metrics_and_stops_on_sigterm(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    job = SynthesisJobFactory(sentence_count=1)
    db = connection.settings_dict
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tts_project.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        PULSAR_URL=broker.url,
        TTS_TOPIC_PREFIX=topic_prefix,
        MEDIA_ROOT=str(tmp_path / "media"),
        TTS_CONSUMER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "must-not-be-used"),
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_event_consumer"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for event in ("started", "segment", "completed"):
            send(make_event(event, job))
        deadline = time.monotonic() + 30
        while SynthesisJob.objects.get(pk=job.pk).status != JobStatus.SUCCEEDED:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the consumer did not finish the job in 30 s"
            time.sleep(0.2)
        # The events are counted just after the commit (and its hooks), so the status can be
        # seen a moment before the counter.
        applied = 'tts_gateway_events_applied_total{result="applied",type="completed"} 1.0'

        def exposition_counting_the_completion() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                exposition = response.read().decode()
            return exposition if applied in exposition else ""

        exposition = wait_until(exposition_counting_the_completion, 10, "the completion counted", interval_s=0.1)
        assert applied in exposition
        assert "tts_gateway_outbox_backlog" in exposition
        assert not (tmp_path / "must-not-be-used").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    assert "event consumer stopped" in output
    assert Path(SynthesisJob.objects.get(pk=job.pk).audio.path).is_relative_to(tmp_path / "media")


def test_consumer_started_while_the_broker_is_down_waits_for_it(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker
) -> None:
    import threading

    job = SynthesisJobFactory(sentence_count=1)
    broker.stop()
    try:
        runner = threading.Thread(target=run_consumer, kwargs={"seconds": 8})
        runner.start()
        time.sleep(1.5)  # the command is retrying its subscriptions now
    finally:
        broker.start()
    for event in ("started", "segment", "completed"):
        send(make_event(event, job))
    runner.join(timeout=30)
    assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_job_whose_completed_event_was_lost_is_republished_and_then_completes(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker, topic_prefix: str, settings: Any, media_root: Any
) -> None:
    from gateway import relay, services
    from gateway.models import OutboxMessage

    from .factories import UserFactory

    job = services.job_submit(owner=UserFactory(), text="First sentence. Second sentence.")  # published on commit
    agent = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        jobs = agent.subscribe(
            f"persistent://public/default/{topic_prefix}-jobs-short",
            "tts-agents",
            consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Earliest,
        )
        original = jobs.receive(timeout_millis=10_000)
        jobs.acknowledge(original)
        # The agent synthesized everything, but the broker lost `completed` after confirming it.
        send(make_event("started", job))
        for index in range(2):
            send(make_event("segment", job, first_sentence=index))
        run_consumer(seconds=3)
        assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING

        settings.TTS_STALLED_JOB_AFTER_S = 0.5
        time.sleep(0.6)
        assert relay.watchdog_round() == 1  # its outbox record is published on commit

        republished = jobs.receive(timeout_millis=10_000)
        jobs.acknowledge(republished)
        assert republished.partition_key() == str(job.id)
        assert republished.data() == original.data()  # same job, same attempt: the cache replays it
        message = JobMessage.from_bytes(republished.data())
        assert (message.job_id, message.attempt) == (str(job.id), 1)
        assert OutboxMessage.objects.filter(job_id=job.pk, published_at__isnull=False).count() == 2

        # The agent replays the job; the repeated events apply idempotently and the job ends.
        send(make_event("started", job))
        for index in range(2):
            send(make_event("segment", job, first_sentence=index))
        send(make_event("completed", job))
        run_consumer(seconds=3)
    finally:
        agent.close()
    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.stall_republishes == 1


def test_a_queued_job_whose_message_was_lost_is_re_sent_and_completes(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker, topic_prefix: str, settings: Any
) -> None:
    from gateway import relay, services

    from .factories import UserFactory

    job = services.job_submit(owner=UserFactory(), text="Lost in the queue.")  # published on commit
    agent = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        jobs = agent.subscribe(
            f"persistent://public/default/{topic_prefix}-jobs-short",
            "tts-agents",
            consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Earliest,
        )
        jobs.acknowledge(jobs.receive(timeout_millis=10_000))  # confirmed, then lost: nobody works on it
        run_consumer(seconds=1)
        assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.QUEUED

        settings.TTS_QUEUED_JOB_RESEND_AFTER_S = 0.5
        time.sleep(0.6)
        assert relay.watchdog_round() == 1
        resent = JobMessage.from_bytes(jobs.receive(timeout_millis=10_000).data())
        assert (resent.job_id, resent.attempt) == (str(job.id), 1)
        for event in ("started", "segment", "completed"):
            send(make_event(event, job))
        run_consumer(seconds=3)
    finally:
        agent.close()
    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert Path(done.audio.path).is_file()


def test_a_job_that_ends_publishes_job_ended_on_the_control_topic(
    broker: EmbeddedBroker, topic_prefix: str, monkeypatch: pytest.MonkeyPatch, api_client: Any, user: Any
) -> None:
    from gateway.publisher import close_publisher, get_publisher
    from gateway.services import notices
    from tts_contracts import JobEnded

    monkeypatch.setattr(notices, "get_publisher", get_publisher)  # the real path, for this test
    agent = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        control = agent.subscribe(
            f"persistent://public/default/{topic_prefix}-control",
            "agent-1-control",
            initial_position=pulsar.InitialPosition.Earliest,
        )
        job = SynthesisJobFactory(owner=user, status=JobStatus.RUNNING, attempt=2)
        response = api_client.post(f"/api/v1/jobs/{job.id}/cancel")
        assert response.status_code == 200, response.content
        assert response.json()["error_code"] == "cancelled"
        notice = JobEnded.from_bytes(control.receive(timeout_millis=10_000).data())
    finally:
        agent.close()
        close_publisher()
    assert notice == JobEnded(job_id=str(job.id), attempt=2, status="cancelled")


def test_a_lost_segment_is_recovered_by_re_sending_the_job_message(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker, topic_prefix: str
) -> None:
    from gateway import services

    from .factories import UserFactory

    job = services.job_submit(owner=UserFactory(), text="First sentence. Second sentence.")
    pcm = [sine_pcm(seconds=0.2, frequency=300 + 100 * index) for index in range(2)]
    agent = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        jobs = agent.subscribe(
            f"persistent://public/default/{topic_prefix}-jobs-short",
            "tts-agents",
            consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Earliest,
        )
        jobs.acknowledge(jobs.receive(timeout_millis=10_000))
        send(make_event("started", job))
        send(make_event("segment", job, first_sentence=0, pcm=pcm[0]))  # sentence 1 never arrives
        send(make_event("completed", job))
        run_consumer(seconds=3)
        assert SynthesisJob.objects.get(pk=job.pk).status == JobStatus.RUNNING  # not failed

        resent = JobMessage.from_bytes(jobs.receive(timeout_millis=10_000).data())
        assert (resent.job_id, resent.attempt) == (str(job.id), 1)
        for index in range(2):  # the replay from the cache
            send(make_event("segment", job, first_sentence=index, pcm=pcm[index]))
        send(make_event("completed", job))
        run_consumer(seconds=3)
    finally:
        agent.close()
    done = SynthesisJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.SUCCEEDED, done.error
    audio, _ = soundfile.read(done.audio.path, dtype="int16")
    assert audio.tobytes() == b"".join(pcm)


def test_a_started_or_a_segment_waits_a_moment_for_what_follows_to_share_its_batch(
    send: Any, make_event: EventFactory, broker: EmbeddedBroker
) -> None:
    """An agent of an older version sent a short job's `started`, segment and `completed` one
    confirmation apart (one message each): the consumer lingers after a `started` or a segment
    (EVENT_LINGER_MS) and takes them in one batch; with nothing behind a segment it returns it
    after the linger, not at the receive timeout."""
    import threading

    from gateway.consumer import EVENT_LINGER_MS, EventConsumer

    job = SynthesisJobFactory(sentence_count=1)
    consumer = EventConsumer(service_url=broker.url).open()

    def batch_after(first: str, then: str) -> list[str]:
        """Send `first`, and `then` a third of the linger later; what one receive returns."""
        send(make_event(first, job))
        late = threading.Timer(EVENT_LINGER_MS / 1000 / 3, lambda: send(make_event(then, job)))
        late.start()
        batch = consumer._receive_waiting(consumer._events, timeout_ms=5000)
        late.join()
        return [event.type for _, _, events in batch for event in events or ()]

    try:
        assert batch_after("started", "segment") == ["started", "segment"]
        assert consumer._receive_waiting(consumer._events, timeout_ms=100) == []  # nothing left behind
        assert batch_after("segment", "completed") == ["segment", "completed"]

        send(make_event("segment", job, first_sentence=1))
        began = time.monotonic()
        alone = consumer._receive_waiting(consumer._events, timeout_ms=5000)
        assert [event.type for _, _, events in alone for event in events or ()] == ["segment"]
        assert time.monotonic() - began < 2.0  # the linger, not the 5 s receive timeout
    finally:
        consumer.close()
