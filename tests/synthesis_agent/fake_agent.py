"""`python -m tests.synthesis_agent.fake_agent ARGS`: the real agent main() with a fake voice.

For subprocess tests (signals, exit codes) before or without the real voice. The fake is
injected through main()'s `voice_loader` parameter; production code has no switch for it.
FAKE_VOICE_DELAY_S sets the per-sentence delay.
"""

from __future__ import annotations

import os
import sys

from synthesis_agent.__main__ import main
from tts_runtime import exit_without_finalizers

from .fakes import FakeVoice, FakeVoices

if __name__ == "__main__":
    voices = FakeVoices(FakeVoice(delay_s=float(os.environ.get("FAKE_VOICE_DELAY_S", "0"))))
    exit_without_finalizers(main(sys.argv[1:], voice_loader=voices.loader))
