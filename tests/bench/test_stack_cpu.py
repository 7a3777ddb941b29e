"""bench/stack_cpu.py, shortened, as a test: both stacks serve every job both ways, and every
figure it promises is printed, positive and finite (the figures themselves are the benchmark's)."""

from __future__ import annotations

import pytest

from bench.stack_cpu import FORMS, one_sentence_run
from tts_contracts import decode_events, encode_events

from .figures import run_and_check_figures

FIGURES = ("one message vs three events cpu ratio", "prepared vs client-side binding cpu ratio")


def test_the_stand_in_sends_what_an_agent_sends_for_one_sentence() -> None:
    events = one_sentence_run({"id": "0f83666c-17aa-4e5e-9a1b-a0b87a003f0c", "voice": "en_US-joe-medium"})
    assert [event.type for event in events] == ["started", "segment", "completed"]
    assert [event.seq for event in events] == [0, 1, 2]
    assert decode_events(encode_events(events)) == events


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_short_run_prints_positive_finite_figures() -> None:
    stdout = run_and_check_figures("stack_cpu.py", ["--jobs", "20", "--rounds", "1"], FIGURES, timeout_s=240)
    for phase in ("submit", *FORMS):
        for binding in ("prepared on", "prepared off"):
            assert f"{phase}, {binding}: web" in stdout
