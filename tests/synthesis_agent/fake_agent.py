"""`python -m tests.synthesis_agent.fake_agent ARGS`: the real agent main() with a fake voice.

For subprocess tests (signals, exit codes) before or without the real voice. The fake is
injected through main()'s `voice_loader` parameter; production code has no switch for it.
FAKE_VOICE_DELAY_S sets the per-sentence delay; FAKE_SIGTERM_WHILE_LOADING=1 makes the process
send itself SIGTERM while its voice loads (a stop that arrives during start-up).
"""

from __future__ import annotations

import os
import signal
import sys

from synthesis_agent.__main__ import main
from synthesis_agent.voice import VoiceLoader
from tts_runtime import exit_without_finalizers

from .fakes import FakeVoice, FakeVoices


def _stopped_while_loading(voices: FakeVoices) -> VoiceLoader:
    def loader(voice_id: str | None) -> FakeVoice:
        os.kill(os.getpid(), signal.SIGTERM)
        return voices.loader(voice_id)

    return loader


if __name__ == "__main__":
    voices = FakeVoices(FakeVoice(delay_s=float(os.environ.get("FAKE_VOICE_DELAY_S", "0"))))
    stop_while_loading = os.environ.get("FAKE_SIGTERM_WHILE_LOADING") == "1"
    loader = _stopped_while_loading(voices) if stop_while_loading else voices.loader
    exit_without_finalizers(main(sys.argv[1:], voice_loader=loader))
