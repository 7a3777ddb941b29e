"""Several events of one job in one message on the events topic: written and read back in order,
one event still its own bytes, and lists that are no agent's rejected with the reason."""

from __future__ import annotations

import json
import os

import pytest

from tts_contracts import (
    CompletedEvent,
    ContractError,
    JobEvent,
    SegmentEvent,
    StartedEvent,
    decode_event,
    decode_events,
    encode_events,
)
from tts_contracts.messages import EVENTS_MESSAGE_TYPE, MAX_EVENTS_PER_MESSAGE


def one_sentence_run(job_id: str = "job-1") -> list[JobEvent]:
    envelope = {"job_id": job_id, "attempt": 2, "agent_id": "agent-1", "sent_at": 1_700_000_000.5}
    return [
        StartedEvent(**envelope, seq=0, sentence_count=1, sample_rate=22050, voice="v", model_checksum="c"),
        SegmentEvent(**envelope, seq=1, first_sentence=0, sentence_count=1, sample_rate=22050, pcm=os.urandom(4410)),
        CompletedEvent(**envelope, seq=2, sentence_count=1, segment_count=1, sample_rate=22050, audio_seconds=0.1),
    ]


def test_a_run_in_one_message_reads_back_as_its_events_in_order() -> None:
    events = one_sentence_run()
    payload = encode_events(events)

    assert json.loads(payload)["type"] == EVENTS_MESSAGE_TYPE
    assert decode_events(payload) == events
    # Each event inside is the JSON it would be alone.
    assert [decode_event(json.dumps(item).encode()) for item in json.loads(payload)["events"]] == events


def test_one_event_is_its_own_bytes_and_a_lone_event_reads_as_a_list() -> None:
    started = one_sentence_run()[0]
    assert encode_events([started]) == started.to_bytes()
    assert decode_events(started.to_bytes()) == [started]


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([], "at least one event"),
        (one_sentence_run("job-1")[:2] + one_sentence_run("job-2")[2:], "one job"),
        (one_sentence_run()[:1] * (MAX_EVENTS_PER_MESSAGE + 1), f"at most {MAX_EVENTS_PER_MESSAGE}"),
    ],
)
def test_what_no_message_may_hold_is_not_written(events: list[JobEvent], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        encode_events(events)


def _message(events: object) -> bytes:
    return json.dumps({"schema": 1, "type": EVENTS_MESSAGE_TYPE, "events": events}).encode()


def _item(event: JobEvent) -> dict:
    return json.loads(event.to_bytes())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_message([]), "list of 1 to"),
        (_message({"not": "a list"}), "list of 1 to"),
        (_message([_item(one_sentence_run()[0])] * (MAX_EVENTS_PER_MESSAGE + 1)), "list of 1 to"),
        (_message([_item(one_sentence_run()[0]), "started"]), r"events\[1\] is not an event"),
        (_message([{**_item(one_sentence_run()[0]), "schema": 2}]), r"events\[0\] is not an event of schema 1"),
        (_message([{**_item(one_sentence_run()[0]), "attempt": 0}]), r"events\[0\]: attempt"),
        (_message([_item(one_sentence_run("job-1")[0]), _item(one_sentence_run("job-2")[2])]), "one job"),
    ],
)
def test_a_message_of_events_that_breaks_the_contract_is_rejected_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_events(payload)
