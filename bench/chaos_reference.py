"""Reference audio for bench/chaos.py: each (text, params) synthesized afresh in this clean process,
through the agent's own pipeline with no cache, exactly as an agent that never crashed would.

Reads `{"bodies": [{"text": ..., "params": {...}}, ...], "threads": N}` on stdin and prints a JSON
object mapping each body's key (bench/chaos.py `body_key`) to the SHA-256 of its 16-bit PCM.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vits  # noqa: F401 - before torch, as the agent does (OpenMP waits passively)
from synthesis_agent.cache import NullCache
from synthesis_agent.outcomes import PipelineSettings
from synthesis_agent.pipeline import run_job
from synthesis_agent.voice import VoicePool, load_vits_voice
from tts_contracts import JobMessage, SegmentEvent, defaults, length_class_for


def body_key(body: dict) -> str:  # type: ignore[type-arg]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def main() -> int:
    import torch

    request = json.load(sys.stdin)
    torch.set_num_threads(int(request.get("threads", 1)))
    voices = VoicePool(load_vits_voice, defaults.DEFAULT_VOICE)
    settings = PipelineSettings(agent_id="reference", max_attempts=1, time_limit_s=1e9, time_limit_rtf=0.0)
    digests = {}
    for body in request["bodies"]:
        message = JobMessage(
            job_id=str(uuid.uuid4()),
            attempt=1,
            text=body["text"],
            voice=body.get("voice") or defaults.DEFAULT_VOICE,
            length_class=length_class_for(chars=len(body["text"])),
            params=body.get("params") or {},
        )
        events, outcome = run_job(
            message.to_bytes(), voices=voices, cache=NullCache(), settings=settings, queue=message.length_class
        )
        if outcome.status != "succeeded":
            raise RuntimeError(f"reference synthesis of {body['text'][:60]!r} ended {outcome}")
        segments = sorted((e for e in events if isinstance(e, SegmentEvent)), key=lambda e: e.first_sentence)
        digests[body_key(body)] = hashlib.sha256(b"".join(e.pcm for e in segments)).hexdigest()
    json.dump(digests, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
