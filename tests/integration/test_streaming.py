"""Live status, streaming audio, formats and the public results topic, against the whole stack.

The gateway runs as gunicorn with uvicorn workers (ASGI), as `make run` starts it; updates
travel consumer -> broker -> gateway listener -> open streams.
"""

from __future__ import annotations

import http.client
import io
import json
import time
import urllib.parse
from collections.abc import Iterator

import jsonschema
import numpy as np
import pulsar
import pytest
import soundfile

from tests.integration.test_end_to_end import metric_total
from tests.stack_harness import RunningStack
from tts_contracts.results import ResultFinal, ResultSegment, decode_result, results_json_schema

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCES = (
    "The first sentence is short. "
    "The second one carries a little more text so that it takes longer to say. "
    "A third sentence follows, and then a fourth closes the paragraph for good."
)


def _connection(stack: RunningStack) -> http.client.HTTPConnection:
    url = urllib.parse.urlsplit(stack.gateway_url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=120)


def sse_events(stack: RunningStack, job_id: str, *, last_event_id: str | None = None) -> Iterator[dict]:
    """Parse the job's event stream until the server closes it."""
    connection = _connection(stack)
    headers = {"Authorization": f"Token {stack.api_token}", "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    connection.request("GET", f"/api/v1/jobs/{job_id}/events", headers=headers)
    response = connection.getresponse()
    assert response.status == 200, response.read()
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    event: dict = {}
    for raw in response:
        line = raw.decode().rstrip("\n")
        if not line:
            if event:
                event["received_at"] = time.time()
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(": ")
            event[key] = json.loads(value) if key == "data" else value
    connection.close()


def stream_audio(stack: RunningStack, job_id: str, fmt: str) -> tuple[bytes, http.client.HTTPMessage, float]:
    """The whole streamed body, its headers (names match in any case, as HTTP says: uvicorn's
    httptools protocol sends them in lower case), and when the first byte came (monotonic)."""
    connection = _connection(stack)
    connection.request(
        "GET", f"/api/v1/jobs/{job_id}/audio/stream?format={fmt}", headers={"Authorization": f"Token {stack.api_token}"}
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    first = response.read1(65536)
    first_at = time.monotonic()
    body = first + response.read()
    headers = response.msg
    connection.close()
    return body, headers, first_at


def stored_samples(stack: RunningStack, job_id: str) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(stack.api.audio(job_id)), dtype="int16")
    return samples, rate


def test_sse_sends_state_progress_and_done_then_reconnects_with_last_event_id(running_stack: RunningStack) -> None:
    job = running_stack.api.submit(SENTENCES)
    events = list(sse_events(running_stack, job["id"]))
    names = [event["event"] for event in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert names[0] == "progress"  # the current state at once
    done = events[-1]["data"]
    assert done["status"] == "succeeded" and done["id"] == job["id"]
    assert done["links"]["audio"].endswith(f"/api/v1/jobs/{job['id']}/audio")
    progress = [event["data"] for event in events if event["event"] == "progress"]
    assert [p["sentences_done"] for p in progress] == sorted(p["sentences_done"] for p in progress)
    assert all(p["sentence_count"] in (None, done["sentence_count"]) for p in progress), progress
    assert done["sentence_count"] == 3
    assert any(0 < p["sentences_done"] < done["sentence_count"] for p in progress), progress  # pushed live
    # Reconnecting after the end: the final state at once, then the stream closes.
    again = list(sse_events(running_stack, job["id"], last_event_id=events[-2]["id"]))
    assert [event["event"] for event in again] == ["done"]


def test_the_bench_client_gets_done_once_the_audio_can_be_fetched(running_stack: RunningStack) -> None:
    # bench/isolation.py measures a short job's latency to this event: it must mean "audio ready".
    posted_at = time.time()
    job = running_stack.api.submit("The client waits for this one.")
    done = running_stack.api.done_event(job["id"], timeout_s=120)
    assert done is not None and done["status"] == "succeeded" and done["id"] == job["id"]
    assert posted_at < done["received_at"] <= time.time()
    assert running_stack.api.audio(job["id"])[:4] == b"RIFF"
    assert running_stack.api.done_event("00000000-0000-0000-0000-000000000000", timeout_s=10) is None  # 404


def test_sse_of_someone_elses_job_is_not_found(running_stack: RunningStack) -> None:
    job = running_stack.api.submit("Private words.")
    other = running_stack.stack._manage("create_api_token", "sse-stranger").strip().splitlines()[-1]
    connection = _connection(running_stack)
    connection.request("GET", f"/api/v1/jobs/{job['id']}/events", headers={"Authorization": f"Token {other}"})
    response = connection.getresponse()
    assert response.status == 404
    assert json.loads(response.read())["error"]["code"] == "not_found"


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_streamed_audio_is_sample_identical_to_the_stored_wav(running_stack: RunningStack, fmt: str) -> None:
    job = running_stack.api.submit(SENTENCES + f" Format {fmt}.")
    body, headers, _ = stream_audio(running_stack, job["id"], fmt)
    stored, rate = stored_samples(running_stack, job["id"])
    if fmt == "pcm":
        assert headers["Content-Type"] == "audio/pcm" and headers["X-Sample-Rate"] == str(rate)
        streamed = np.frombuffer(body, dtype="<i2")
    else:
        assert body[:4] == b"RIFF" and body[36:40] == b"data"
        assert int.from_bytes(body[40:44], "little") == 0xFFFFFFFF  # unknown length while streaming
        assert int.from_bytes(body[24:28], "little") == rate
        streamed = np.frombuffer(body[44:], dtype="<i2")
    assert streamed.size == stored.size > rate  # more than a second of speech
    assert np.array_equal(streamed, stored)


def test_a_long_first_sentence_is_streamed_from_its_preview_on(running_stack: RunningStack) -> None:
    # About 9 s of speech in the first sentence: over TTS_PREVIEW_MIN_SECONDS, so its agent sends
    # the first chunk as a preview, which the consumer stores for the streams (tests/gateway
    # test_previews.py drives the stream's join with events in hand).
    first = (
        "A long first sentence keeps the listener waiting for its last word, which is why the agent "
        "sends its first second of speech ahead of the rest."
    )
    applied_before = metric_total(
        [running_stack.consumer_metrics_url], "tts_gateway_events_applied_total", type="preview", result="applied"
    )
    job = running_stack.api.submit(f"{first} Then a short one.")
    body, _, _ = stream_audio(running_stack, job["id"], "pcm")
    stored, rate = stored_samples(running_stack, job["id"])
    assert np.array_equal(np.frombuffer(body, dtype="<i2"), stored) and stored.size > 5 * rate
    applied_after = metric_total(
        [running_stack.consumer_metrics_url], "tts_gateway_events_applied_total", type="preview", result="applied"
    )
    assert applied_after == applied_before + 1


def test_formats_are_encoded_once_and_negotiated(running_stack: RunningStack) -> None:
    job = running_stack.submit_and_wait("Formats for every client. A second sentence, too.")
    stored, rate = stored_samples(running_stack, job["id"])
    for fmt, content_type in (("flac", "audio/flac"), ("mp3", "audio/mpeg"), ("opus", "audio/ogg")):
        status, body, headers = running_stack.api.request("GET", f"/api/v1/jobs/{job['id']}/audio?format={fmt}")
        assert status == 200 and headers["Content-Type"] == content_type
        decoded, decoded_rate = soundfile.read(io.BytesIO(body), dtype="int16")
        expected_rate = 24000 if fmt == "opus" else rate
        assert decoded_rate == expected_rate
        assert abs(decoded.size / decoded_rate - stored.size / rate) < 0.1
        if fmt == "flac":
            assert np.array_equal(decoded, stored)  # lossless
        again = running_stack.api.request("GET", f"/api/v1/jobs/{job['id']}/audio?format={fmt}")
        assert again[1] == body  # served from the stored encoding
    encoded = list((running_stack.stack.var_dir / "media").rglob(f"{job['id']}.a1.*"))
    assert sorted(path.suffix for path in encoded) == [".flac", ".mp3", ".opus"]

    status, body, _ = running_stack.api.request("GET", f"/api/v1/jobs/{job['id']}/audio?format=aac")
    error = json.loads(body)["error"]
    assert status == 400 and error["field"] == "format" and error["supported"] == ["wav", "flac", "mp3", "opus", "pcm"]

    connection = _connection(running_stack)
    connection.request(
        "GET",
        f"/api/v1/jobs/{job['id']}/audio",
        headers={"Authorization": f"Token {running_stack.api_token}", "Accept": "audio/flac, audio/wav;q=0.5"},
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "audio/flac"
    assert np.array_equal(soundfile.read(io.BytesIO(response.read()), dtype="int16")[0], stored)


def test_a_downstream_service_reassembles_the_audio_from_the_results_topic(running_stack: RunningStack) -> None:
    from django.conf import settings

    schema = results_json_schema()
    topic = f"persistent://{settings.PULSAR_TENANT}/{settings.PULSAR_NAMESPACE}/{settings.TTS_TOPIC_PREFIX}-results-v1"
    client = pulsar.Client(running_stack.stack.env["PULSAR_URL"])
    try:
        consumer = client.subscribe(
            topic,
            "downstream-test",
            consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Latest,
        )
        job = running_stack.api.submit(SENTENCES + " Downstream listens.")
        segments: dict[int, ResultSegment] = {}
        final: ResultFinal | None = None
        deadline = time.monotonic() + 120
        while final is None and time.monotonic() < deadline:
            message = consumer.receive(timeout_millis=120_000)
            consumer.acknowledge(message)
            jsonschema.validate(json.loads(message.data()), schema)
            result = decode_result(message.data())
            if result.job_id != job["id"]:
                continue
            if isinstance(result, ResultSegment):
                segments[result.first_sentence] = result
            else:
                final = result
    finally:
        client.close()
    assert final is not None and final.status == "succeeded" and final.error_code is None
    assert final.audio_url == f"/api/v1/jobs/{job['id']}/audio"
    assert segments[0].sentence_count == 1  # the first segment is one sentence
    pcm = b"".join(segments[first].pcm for first in sorted(segments))
    stored, rate = stored_samples(running_stack, job["id"])
    assert final.sample_rate == rate and {s.sample_rate for s in segments.values()} == {rate}
    assert np.array_equal(np.frombuffer(pcm, dtype="<i2"), stored)
