"""The official `openai` package, unchanged, against the gateway's /v1 (OpenAI-compatible speech)."""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest
import soundfile

from tests.stack_harness import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = "Hello from an OpenAI client. The second sentence streams while it is made."


@pytest.fixture
def client(running_stack: RunningStack) -> openai.OpenAI:
    return openai.OpenAI(api_key=running_stack.api_token, base_url=running_stack.gateway_url + "/v1", max_retries=0)


def test_speech_create_returns_mp3_and_makes_a_normal_job(client: openai.OpenAI, running_stack: RunningStack) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="int16")
    assert rate == 22050 and samples.size / rate > 2.0
    assert np.abs(samples).max() > 1000  # speech, not silence
    job_id = response.response.headers["X-Job-Id"]
    job = running_stack.api.job(job_id)  # visible in the user's jobs like any other
    assert job["status"] == "succeeded" and job["voice"] == "en_US-joe-medium" and job["length_class"] == "short"


def test_streaming_response_gives_opus_and_speed_sets_the_length_scale(
    client: openai.OpenAI, running_stack: RunningStack
) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1-hd", voice="nova", input=TEXT, response_format="opus", speed=2.0, instructions="Speak calmly."
    ) as response:
        assert response.headers["Content-Type"] == "audio/ogg"
        chunks = list(response.iter_bytes())
        job_id = response.headers["X-Job-Id"]
    samples, rate = soundfile.read(io.BytesIO(b"".join(chunks)), dtype="int16")
    assert rate == 24000 and samples.size / rate > 1.0
    job = running_stack.api.job(job_id)
    assert job["params"] == {"length_scale": 0.5}
    assert abs(samples.size / rate - job["audio"]["duration_s"]) < 0.1


def test_flac_comes_whole_and_lossless(client: openai.OpenAI, running_stack: RunningStack) -> None:
    response = client.audio.speech.create(
        model="en_US-joe-medium", voice="echo", input="Lossless, please.", response_format="flac"
    )
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="int16")
    stored, stored_rate = soundfile.read(
        io.BytesIO(running_stack.api.audio(response.response.headers["X-Job-Id"])), dtype="int16"
    )
    assert rate == stored_rate and np.array_equal(samples, stored)


def test_errors_use_openai_shape_and_models_and_voices_are_listed(
    client: openai.OpenAI, running_stack: RunningStack
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    body = caught.value.body
    assert body["param"] == "voice" and body["type"] == "invalid_request_error" and "alloy" in body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="aac")
    assert caught.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9)
    assert caught.value.body["param"] == "speed"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=str(client.base_url), max_retries=0).audio.speech.create(
            model="tts-1", voice="alloy", input="Hi."
        )
    assert {"tts-1", "tts-1-hd", "en_US-joe-medium"} <= {model.id for model in client.models.list()}
    voices = {voice["id"]: voice["voice"] for voice in running_stack.api.json("GET", "/v1/audio/voices")["voices"]}
    assert voices["alloy"] == voices["en_US-joe-medium"] == "en_US-joe-medium"
