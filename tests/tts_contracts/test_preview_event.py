"""The `preview` event: the first chunks of a job's first sentence, checked like a segment."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tts_contracts import ContractError, PreviewEvent, StartedEvent, decode_event, decode_events, encode_events

ENVELOPE = {"job_id": "job-1", "attempt": 1, "agent_id": "agent-1", "sent_at": 1_700_000_000.25}


def preview(pcm: bytes = b"\x01\x00\x02\x00") -> PreviewEvent:
    return PreviewEvent(**ENVELOPE, seq=1, sentence=0, sample_rate=22050, pcm=pcm)


def test_a_preview_reads_back_and_travels_with_the_held_back_started() -> None:
    event = preview(os.urandom(2 * 22050))
    data = json.loads(event.to_bytes())
    assert data["type"] == "preview" and list(data["data"]) == ["sentence", "sample_rate", "audio_b64"]
    assert base64.b64decode(data["data"]["audio_b64"]) == event.pcm
    assert decode_event(event.to_bytes()) == event
    started = StartedEvent(**ENVELOPE, seq=0, sentence_count=3, sample_rate=22050)
    assert decode_events(encode_events([started, event])) == [started, event]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sentence": 2}, "sentence must be 0"),
        ({"audio_b64": ""}, "must not be empty"),
        ({"audio_b64": base64.b64encode(b"\x01\x02\x03").decode()}, "odd number of bytes"),
        ({"sample_rate": 0}, "sample_rate"),
    ],
)
def test_a_preview_that_breaks_the_contract_is_rejected(change: dict[str, object], reason: str) -> None:
    data = json.loads(preview().to_bytes())
    data["data"].update(change)
    with pytest.raises(ContractError, match=reason):
        decode_event(json.dumps(data).encode())
