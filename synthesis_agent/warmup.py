"""One sentence synthesized before the agent subscribes, so its first job does not pay start-up.

A freshly loaded voice is slow once: the first synthesis in a new process pays lazy
initialization somewhere in the front end and the math libraries (not broken down further). On
a 2-core AMD EPYC (Zen 3) the first sentence took 0.67-0.69 s against 0.20-0.28 s for the next
ones (two fresh processes), and a fresh agent's first one-sentence job 0.76-0.86 s against
0.34-0.41 s with this warm-up. After a deploy, a scale-up or a restart that cost would land on a
client's first request; here it is paid before `connect()`, so the broker hands this agent
nothing until it is warm, and readiness (the metrics port, opened after this) means warm too.

The sentence goes through the path a job takes (`SentenceSynthesis`, chunk by chunk at the
agent's `chunk_seconds`), so the decoder's window geometry is the one jobs use.
"""

from __future__ import annotations

import logging
import time

from vits.params import SynthesisParams

from .sentence import SentenceSynthesis
from .voice import VoiceLike

logger = logging.getLogger(__name__)

# About 5 s of speech: several 1 s chunks, so the decoder's first, middle and last windows run.
WARM_UP_TEXT = "This sentence warms the voice up before the agent takes its first job."


def warm_up_voice(voice: VoiceLike, *, chunk_seconds: float, text: str = WARM_UP_TEXT) -> float:
    """Synthesize `text` as a job would and discard it; returns the seconds it took.

    Errors propagate: a voice that cannot speak this sentence cannot serve jobs either.
    """
    began = time.perf_counter()
    params = SynthesisParams()
    for sentence in voice.prepare(text):
        synthesis = SentenceSynthesis(voice, sentence, params, chunk_seconds=chunk_seconds, clock=time.perf_counter)
        while not synthesis.done:
            synthesis.advance()
    elapsed = time.perf_counter() - began
    logger.info("voice %s warmed up in %.2f s", voice.info.id, elapsed)
    return elapsed
