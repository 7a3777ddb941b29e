"""Defaults both processes share, written once. Entry points may override them from the environment."""

from __future__ import annotations

DEFAULT_VOICE = "en_US-joe-medium"

PULSAR_URL = "pulsar://127.0.0.1:6650"
PULSAR_TENANT = "public"
PULSAR_NAMESPACE = "default"
TOPIC_PREFIX = "tts"

# Length classes by characters of the submitted text (inclusive upper bounds).
SHORT_MAX_CHARS = 400
MEDIUM_MAX_CHARS = 4000

# Attempts at a job that keeps failing: synthesis errors, and deliveries that died (agent crash,
# out of memory) one after another without synthesizing anything new.
MAX_ATTEMPTS = 3
# The broker's dead-letter topic is only a backstop (no Redis to count crashes, a poison message):
# deliveries cut short while the job still made progress (an agent killed mid-job, the job then
# replayed from the cache) must not use up the attempts, so it allows many more: a chaos run that
# SIGKILLs an agent every 20 s took some long jobs to 12 deliveries, each one making progress.
DEAD_LETTER_AFTER_DELIVERIES = 30

# Speaking rate of the default voice at length_scale 1: about 14 characters of normalized text per
# second of audio (measured on en_US-joe-medium over mixed English prose). Used for duration
# estimates (the /validate answer, segment sizing), never for anything that must be exact.
SECONDS_PER_CHAR = 1 / 14.0


def estimate_audio_seconds(*, chars: int, length_scale: float = 1.0) -> float:
    """Roughly how many seconds of speech `chars` characters of normalized text make."""
    return chars * SECONDS_PER_CHAR * length_scale
