"""Synthesis API: batching, seeds, parameters, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from vits import Audio, SynthesisParams, Voice
from vits.errors import (
    EmptyTextError,
    InvalidTextError,
    ParameterError,
    UnknownSpeakerError,
    UnspeakableTextError,
    VitsInputError,
)

ZERO = SynthesisParams(noise_scale=0.0, noise_w=0.0)
BATCH = ["Good morning.", "The weather today is cloudy with a chance of rain later on.", "Bye!"]


def test_synthesize_returns_audio(voice: Voice) -> None:
    audio = voice.synthesize("Hello there. How are you?", SynthesisParams(seed=3))
    assert isinstance(audio, Audio)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == 22050
    assert 0.5 < audio.duration_s < 5
    assert np.abs(audio.samples).max() <= 1.0


def test_prepare_is_the_text_front_end(voice: Voice) -> None:
    from vits.text import prepare_sentences

    text = "Dr. Smith paid $3.50. Then he left!"
    assert voice.prepare(text) == prepare_sentences(text)


def test_batch_equals_unbatched_at_zero_noise(voice: Voice) -> None:
    batched = voice.synthesize_batch(BATCH, ZERO)
    for sentence, audio in zip(BATCH, batched, strict=True):
        alone = voice.synthesize_sentence(sentence, ZERO)
        assert len(audio) == len(alone)
        np.testing.assert_allclose(audio.samples, alone.samples, atol=1e-4)


def test_batch_equals_unbatched_with_seeded_noise(voice: Voice) -> None:
    batched = voice.synthesize_batch(BATCH[:2], SynthesisParams(seed=11))
    for sentence, audio in zip(BATCH[:2], batched, strict=True):
        alone = voice.synthesize_sentence(sentence, SynthesisParams(seed=11))
        assert len(audio) == len(alone)
        np.testing.assert_allclose(audio.samples, alone.samples, atol=1e-3)


def test_same_seed_same_samples(voice: Voice) -> None:
    first = voice.synthesize_sentence("Determinism matters.", SynthesisParams(seed=42))
    second = voice.synthesize_sentence("Determinism matters.", SynthesisParams(seed=42))
    other = voice.synthesize_sentence("Determinism matters.", SynthesisParams(seed=43))
    np.testing.assert_array_equal(first.samples, second.samples)
    assert len(first) != len(other) or not np.array_equal(first.samples, other.samples)


def test_sentence_audio_does_not_depend_on_position(voice: Voice) -> None:
    parts = list(voice.synthesize_sentences("First one here. Second one there.", SynthesisParams(seed=5)))
    assert len(parts) == 2
    alone = voice.synthesize_sentence(voice.prepare("Second one there.")[0], SynthesisParams(seed=5))
    np.testing.assert_array_equal(parts[1].samples, alone.samples)


def test_synthesize_joins_sentences(voice: Voice) -> None:
    text = "One. Two."
    whole = voice.synthesize(text, SynthesisParams(seed=1))
    parts = list(voice.synthesize_sentences(text, SynthesisParams(seed=1)))
    assert len(whole) == sum(len(p) for p in parts)


def test_length_scale_changes_duration(voice: Voice) -> None:
    normal = voice.synthesize_sentence("Slow down please.", SynthesisParams(length_scale=1.0, noise_scale=0, noise_w=0))
    slow = voice.synthesize_sentence("Slow down please.", SynthesisParams(length_scale=2.0, noise_scale=0, noise_w=0))
    assert slow.duration_s > 1.6 * normal.duration_s


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", EmptyTextError),
        ("   \n\t ", EmptyTextError),
        ("!!! ??? ...", UnspeakableTextError),
        ("🙂🙂🙂", UnspeakableTextError),
        ("hello\x00world", InvalidTextError),
        ("a" * 500, InvalidTextError),
    ],
)
def test_bad_text(voice: Voice, text: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        voice.synthesize(text)
    assert isinstance(info.value, VitsInputError) and str(info.value)
    assert info.value.field == "text"


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"speaker": 1}, UnknownSpeakerError, "speaker"),
        ({"speaker": -1}, UnknownSpeakerError, "speaker"),
        ({"length_scale": 10.0}, ParameterError, "length_scale"),
        ({"length_scale": float("nan")}, ParameterError, "length_scale"),
        ({"noise_scale": -0.1}, ParameterError, "noise_scale"),
        ({"noise_w": 3.0}, ParameterError, "noise_w"),
        ({"seed": -1}, ParameterError, "seed"),
        ({"seed": "x"}, ParameterError, "seed"),
    ],
)
def test_bad_parameters(voice: Voice, kwargs: dict, error: type[Exception], field: str) -> None:
    for call in (voice.synthesize, voice.synthesize_sentence):
        with pytest.raises(error) as info:
            call("Hello.", SynthesisParams(**kwargs))
        assert info.value.field == field


def test_bad_input_is_raised_before_the_first_sentence(voice: Voice) -> None:
    with pytest.raises(ParameterError):
        voice.synthesize_sentences("Hello.", SynthesisParams(length_scale=0))
    with pytest.raises(EmptyTextError):
        voice.synthesize_sentences("")


def test_synthesize_sentence_does_not_renormalize(voice: Voice) -> None:
    # "Dr." expands to "Doctor" only through prepare(); the sentence path reads what it gets.
    assert voice.prepare("Dr. Who.") == ["Doctor Who."]
    with pytest.raises(EmptyTextError):
        voice.synthesize_sentence("  ")
    with pytest.raises(UnspeakableTextError):
        voice.synthesize_sentence("...")
    with pytest.raises(InvalidTextError):
        voice.synthesize_sentence("bad\x07bell")
    with pytest.raises(InvalidTextError):
        voice.synthesize_batch(["fine", "x" * 300])


def test_params_must_be_one_synthesis_params(voice: Voice) -> None:
    with pytest.raises(TypeError, match="SynthesisParams"):
        voice.synthesize_sentence("Hello.", {"seed": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        voice.synthesize_sentence("Hello.", seed=1)  # type: ignore[call-arg]


def test_batch_rejects_a_plain_string(voice: Voice) -> None:
    with pytest.raises(TypeError):
        voice.synthesize_batch("Hello.")  # type: ignore[arg-type]
    assert voice.synthesize_batch([]) == []


def test_audio_conversions() -> None:
    samples = np.sin(np.linspace(0, 100, 2205)).astype(np.float32) * 0.5
    audio = Audio(samples, 22050)
    assert audio.duration_s == pytest.approx(0.1)
    pcm = audio.to_pcm16_bytes()
    assert len(pcm) == 2 * len(samples)
    back = Audio.from_pcm16_bytes(pcm, 22050)
    np.testing.assert_allclose(back.samples, samples, atol=1 / 32767)
    data, rate = soundfile.read(io.BytesIO(audio.to_wav_bytes()), dtype="float32")
    info = soundfile.info(io.BytesIO(audio.to_wav_bytes()))
    assert rate == 22050 and info.subtype == "PCM_16"
    np.testing.assert_allclose(data, samples, atol=2 / 32767)
    with pytest.raises(ValueError):
        Audio.from_pcm16_bytes(b"\x00", 22050)
    clipped = Audio(np.array([2.0, -2.0], dtype=np.float32), 8000)
    assert np.frombuffer(clipped.to_pcm16_bytes(), "<i2").tolist() == [32767, -32767]


@pytest.mark.parametrize("preset", [None, "64"])
def test_import_keeps_onednn_kernels_of_many_shapes_unless_the_operator_says_otherwise(preset: str | None) -> None:
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    if preset is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = preset
    code = "import os, vits; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (preset or "16384")
