"""Messages with audio: written without json's pass over the base64 text, byte for byte what
json.dumps writes, and read back to the same PCM."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tts_contracts import ContractError, SegmentEvent, decode_event
from tts_contracts.fields import AUDIO_SLOT, dumps_with_audio
from tts_contracts.results import ResultSegment, decode_result, encode_result


def _plain(message: dict, pcm: bytes) -> bytes:
    """The message as json.dumps writes it, the slot replaced by the base64 text."""
    text = json.dumps(message, separators=(",", ":")).replace(
        json.dumps(AUDIO_SLOT), json.dumps(base64.b64encode(pcm).decode("ascii"))
    )
    return text.encode("utf-8")


@pytest.mark.parametrize("size", [0, 2, 3, 4410, 132_300])  # nothing, padding cases, 3 s at 22 kHz
def test_dumps_with_audio_writes_what_json_dumps_writes(size: int) -> None:
    pcm = os.urandom(size)
    message = {"schema": 1, "job_id": 'j\u00e9"\\', "data": {"audio_b64": AUDIO_SLOT, "n": 1.5}, "tail": [None]}
    assert dumps_with_audio(message, pcm) == _plain(message, pcm)


@pytest.mark.parametrize("slots", [0, 2])
def test_dumps_with_audio_needs_exactly_one_slot(slots: int) -> None:
    message = {f"audio_{index}": AUDIO_SLOT for index in range(slots)}
    with pytest.raises(ValueError, match="exactly once"):
        dumps_with_audio(message, b"\x00\x00")


def test_a_string_holding_the_slot_text_is_not_taken_for_the_slot() -> None:
    """Inside another string the slot's quotes are escaped: only the real slot matches."""
    pcm = b"\x01\x00\x02\x00"
    message = {"agent_id": f'"{AUDIO_SLOT}"', "audio_b64": AUDIO_SLOT}
    payload = dumps_with_audio(message, pcm)
    assert json.loads(payload) == {"agent_id": f'"{AUDIO_SLOT}"', "audio_b64": base64.b64encode(pcm).decode("ascii")}


def test_a_segment_event_is_the_same_json_and_reads_back() -> None:
    pcm = os.urandom(2 * 22050)
    event = SegmentEvent(
        job_id="job-1", attempt=2, seq=5, agent_id="agent-x", sent_at=12.25,
        first_sentence=3, sentence_count=2, sample_rate=22050, pcm=pcm, cached_sentences=1,
    )  # fmt: skip
    payload = event.to_bytes()
    data = json.loads(payload)
    assert list(data) == ["schema", "type", "job_id", "attempt", "seq", "agent_id", "sent_at", "data"]
    assert list(data["data"]) == [
        "first_sentence", "sentence_count", "sample_rate", "cached_sentences", "audio_b64", "audio_seconds",
    ]  # fmt: skip
    assert payload == json.dumps(data, separators=(",", ":")).encode("utf-8")
    assert decode_event(payload) == event


def test_a_results_segment_is_the_same_json_and_reads_back() -> None:
    segment = ResultSegment(
        job_id="job-1", attempt=1, first_sentence=0, sentence_count=1, sample_rate=16000,
        pcm=os.urandom(3200), sent_at=1.0,
    )  # fmt: skip
    payload = encode_result(segment)
    assert payload == json.dumps(segment.to_dict(), separators=(",", ":")).encode("utf-8")
    assert decode_result(payload) == segment


def test_audio_that_is_not_ascii_base64_is_a_contract_error() -> None:
    event = SegmentEvent(
        job_id="job-1", attempt=1, seq=1, first_sentence=0, sentence_count=1, sample_rate=16000, pcm=b"\x00\x00"
    )
    data = json.loads(event.to_bytes())
    data["data"]["audio_b64"] = "\u00e9\u00e9\u00e9\u00e9"
    with pytest.raises(ContractError, match="audio_b64 is not valid base64"):
        decode_event(json.dumps(data).encode("utf-8"))
