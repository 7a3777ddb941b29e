"""Where a job's audio is cut into `segment` events: a pure function of the job's text.

Every delivery of a job must cut the same segments. The gateway stores segments by
(job, attempt, first_sentence) and drops a redelivery's segment whose first sentence it already
has; if a second agent grouped sentences differently, its segments would overlap the first
agent's and the job's audio would not add up. So boundaries depend only on the sentences and
the length scale, never on timing, preemption or what the cache held.

The first sentence is a segment of its own (fast first audio); short jobs send one segment per
sentence; otherwise consecutive sentences are grouped up to an *estimated* `target_seconds` of
audio. The estimate is the shared speaking rate of `tts_contracts.defaults` (about 14 characters
per second, ~0.071 s of speech per character at length scale 1): a target of 8 s keeps a
segment around 350 KB of PCM (~470 KB of base64 at 22.05 kHz), well under a megabyte, while a
long text does not become thousands of tiny messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from tts_contracts import defaults

DEFAULT_TARGET_SECONDS = 8.0


def plan_segments(
    sentences: Sequence[str],
    *,
    one_per_sentence: bool = False,
    length_scale: float | None = None,
    target_seconds: float = DEFAULT_TARGET_SECONDS,
) -> list[tuple[int, int]]:
    """`(first_sentence, sentence_count)` of each segment, covering every sentence once, in order."""
    if not sentences:
        return []
    scale = length_scale or 1.0
    plan = [(0, 1)]
    first, estimate = 1, 0.0
    for index in range(1, len(sentences)):
        cost = defaults.estimate_audio_seconds(chars=len(sentences[index]), length_scale=scale)
        if index > first and (one_per_sentence or estimate + cost > target_seconds):
            plan.append((first, index - first))
            first, estimate = index, 0.0
        estimate += cost
    if first < len(sentences):
        plan.append((first, len(sentences) - first))
    return plan
