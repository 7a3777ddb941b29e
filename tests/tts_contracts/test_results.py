"""The public results topic's messages: round trip, and every kind valid under the published JSON Schema."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest

from tts_contracts import ContractError
from tts_contracts.results import ResultFinal, ResultSegment, decode_result, encode_result, results_json_schema

JOB_ID = str(uuid.uuid4())
SEGMENT = ResultSegment(
    job_id=JOB_ID,
    attempt=1,
    first_sentence=0,
    sentence_count=1,
    sample_rate=22050,
    pcm=b"\x01\x00\xff\xff",
    sent_at=1.5,
)
FINAL = ResultFinal(
    job_id=JOB_ID,
    attempt=1,
    status="succeeded",
    sentence_count=3,
    sample_rate=22050,
    duration_s=2.5,
    audio_url=f"/api/v1/jobs/{JOB_ID}/audio",
    error_code=None,
    error="",
    sent_at=2.0,
)


@pytest.mark.parametrize("result", [SEGMENT, FINAL])
def test_messages_round_trip_and_match_the_schema(result: ResultSegment | ResultFinal) -> None:
    payload = encode_result(result)
    jsonschema.validate(json.loads(payload), results_json_schema())
    assert decode_result(payload) == result


@pytest.mark.parametrize(
    "change",
    [
        {"type": "other"},
        {"schema": 2},
        {"sample_rate": 0},
        {"surprise": True},
    ],
)
def test_the_schema_rejects_what_a_consumer_could_not_read(change: dict) -> None:
    message = {**json.loads(encode_result(SEGMENT)), **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, results_json_schema())


def test_decode_rejects_other_versions_and_garbage() -> None:
    with pytest.raises(ContractError):
        decode_result(json.dumps({**json.loads(encode_result(FINAL)), "schema": 2}).encode())
    with pytest.raises(ContractError):
        decode_result(b"\xff")
