"""How a delivery of a job may end, and the settings and limits it runs under: the plain values
`pipeline.JobRun` produces and the worker acts on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tts_contracts import defaults

from .segments import DEFAULT_TARGET_SECONDS

# vits.streaming.DEFAULT_CHUNK_SECONDS, written again so this module loads without torch
# (tests/synthesis_agent/test_config.py checks they agree).
DEFAULT_CHUNK_SECONDS = 1.0
# About 70 characters: such a sentence takes 0.3-0.5 s of one core, and its first chunk about a
# quarter of that. Shorter ones (every one-sentence job of the burst benchmark) send no preview:
# the message and the row would cost the service more than the few tens of milliseconds it wins.
DEFAULT_PREVIEW_MIN_SECONDS = 5.0

if TYPE_CHECKING:
    from tts_contracts import JobEvent

# Why a delivery ended without success, as a metric label (tts_agent_failures_total{reason}).
FailureReason = Literal["bad_message", "synthesis_error", "time_limit", "publish_error", "agent_crashed_repeatedly"]
# The stable code the `failed` event carries for each reason (tts_contracts.FAILURE_CODES).
FAILURE_CODE: dict[str, str] = {
    "bad_message": "invalid_input",
    "synthesis_error": "synthesis_error",
    "time_limit": "time_limit",
    "publish_error": "publish_failed",
    "agent_crashed_repeatedly": "agent_crashed_repeatedly",
}


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    agent_id: str
    max_attempts: int
    time_limit_s: float
    # Extra working time per second of the job's estimated audio (see `job_time_limit_s`).
    time_limit_rtf: float
    segment_target_seconds: float = DEFAULT_TARGET_SECONDS
    # Classes whose every sentence is its own segment: first audio as early as possible.
    sentence_segment_classes: tuple[str, ...] = ("short",)
    # Audio per synthesis step, the unit of preemption (0: whole sentences). vits' default chunk.
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    # A first sentence of at least this much estimated audio sends its first chunks as a
    # `preview` before the sentence is done (a stream's first audio); 0: never.
    preview_min_seconds: float = DEFAULT_PREVIEW_MIN_SECONDS


def job_time_limit_s(*, chars: int, length_scale: float | None, base_s: float, rtf: float) -> float:
    """Working time a job may take: `base_s` plus `rtf` seconds per second of estimated audio.

    A fixed limit cannot fit every accepted length (100,000 characters are ~7,000 s of audio);
    scaled by the estimate, a job fails only when synthesis runs slower than `rtf` times real
    time, well above what any supported machine needs (about 0.1 on two CPU cores).
    """
    return base_s + rtf * defaults.estimate_audio_seconds(chars=chars, length_scale=length_scale or 1.0)


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended. `retry`: release the message for redelivery (negative ack);
    otherwise its final event is among the events returned and the message is acked."""

    status: Literal["succeeded", "failed", "retry"]
    reason: str = ""  # a FailureReason for failed and retry
    detail: str = ""

    @property
    def final(self) -> bool:
        return self.status != "retry"


@dataclass(frozen=True)
class StepReport:
    events: list[JobEvent]
    source: Literal["cache", "synthesized"] | None = None  # None: no sentence was delivered (mid-sentence)
    synthesis_s: float = 0.0
    audio_s: float = 0.0
