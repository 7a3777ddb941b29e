"""Per-voice routing: which topic a job goes to, and which voice ids may become topic names."""

from __future__ import annotations

import pytest

from tts_contracts import (
    JOB_QUEUES,
    ContractError,
    Topics,
    check_voice_topic_part,
    every_job_topic,
    job_topic_for,
    parse_dedicated_voices,
)

TOPICS = Topics(tenant="t", namespace="n", prefix="x")


def test_without_dedicated_voices_every_job_goes_to_its_class_topic() -> None:
    for voice in ("en_US-joe-medium", "de_DE-other-low", ""):
        topic = job_topic_for(TOPICS, length_class="medium", scheduling="priority", voice=voice, dedicated_voices=())
        assert topic == "persistent://t/n/x-jobs-medium"


def test_a_dedicated_voice_gets_its_own_topic_per_class_and_in_fifo() -> None:
    dedicated = parse_dedicated_voices(" en_GB-extra-medium ,, de_DE-other-low")
    assert dedicated == {"en_GB-extra-medium", "de_DE-other-low"}
    route = {"dedicated_voices": dedicated, "voice": "en_GB-extra-medium"}
    assert job_topic_for(TOPICS, length_class="short", scheduling="priority", **route) == (
        "persistent://t/n/x-jobs-short-en_GB-extra-medium"
    )
    assert job_topic_for(TOPICS, length_class="long", scheduling="fifo", **route) == (
        "persistent://t/n/x-jobs-fifo-en_GB-extra-medium"
    )
    # Any other voice stays on the shared topic; the dead letters of every queue stay shared.
    other = job_topic_for(
        TOPICS, length_class="short", scheduling="priority", voice="en_US-joe-medium", dedicated_voices=dedicated
    )
    assert other == "persistent://t/n/x-jobs-short"
    assert TOPICS.dead_letter_topics() == [f"persistent://t/n/x-jobs-{queue}-dlq" for queue in JOB_QUEUES]


def test_empty_setting_means_no_dedicated_voice() -> None:
    assert parse_dedicated_voices("") == frozenset()
    assert parse_dedicated_voices(" , ") == frozenset()


@pytest.mark.parametrize(
    ("voice", "reason"),
    [
        ("has space", "cannot be part of a topic name"),
        ("a/b", "cannot be part of a topic name"),
        ("-leading-dash", "cannot be part of a topic name"),
        ("x" * 101, "cannot be part of a topic name"),
        ("DLQ", "reserved topic name"),
        ("v-partition-0", "reserved topic name"),
    ],
)
def test_voice_ids_that_cannot_name_a_topic_are_refused_naming_the_setting(voice: str, reason: str) -> None:
    with pytest.raises(ContractError, match=f"TTS_DEDICATED_VOICES.*{reason}"):
        parse_dedicated_voices(f"en_US-joe-medium,{voice}")
    with pytest.raises(ContractError, match="TTS_DEDICATED_VOICES"):
        TOPICS.job_topic("short", voice)


def test_usual_voice_ids_are_accepted() -> None:
    for voice in ("en_US-joe-medium", "fr_FR-siwis-low", "my.voice_2"):
        assert check_voice_topic_part(voice) == voice


def test_every_job_topic_covers_shared_and_voice_topics() -> None:
    topics = every_job_topic(TOPICS, {"b", "a"})
    assert topics[: len(JOB_QUEUES)] == [TOPICS.job_topic(queue) for queue in JOB_QUEUES]
    assert topics[len(JOB_QUEUES) :] == [TOPICS.job_topic(q, v) for v in ("a", "b") for q in JOB_QUEUES]
    assert len(set(topics)) == len(topics)
    assert not set(topics) & set(TOPICS.dead_letter_topics())
