"""`make run` starts one agent per dedicated voice, and none when TTS_DEDICATED_VOICES is unset."""

from __future__ import annotations

from pathlib import Path

from devstack.stack import DEFAULT_AGENTS, AgentSpec, Stack, StackConfig


def test_no_voice_pool_by_default(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TTS_DEDICATED_VOICES", raising=False)
    stack = Stack(StackConfig(var_dir=tmp_path))
    assert stack.voice_pool_agents() == []
    assert all(agent.voice is None for agent in DEFAULT_AGENTS)


def test_one_agent_per_dedicated_voice(tmp_path: Path) -> None:
    stack = Stack(StackConfig(var_dir=tmp_path, extra_env={"TTS_DEDICATED_VOICES": "de_DE-b-low,en_GB-a-medium"}))
    pools = stack.voice_pool_agents()
    assert [(agent.voice, agent.classes) for agent in pools] == [
        ("de_DE-b-low", ("short", "medium", "long")),
        ("en_GB-a-medium", ("short", "medium", "long")),
    ]
    assert pools[1].label == "agent-short-medium-long-en_GB-a-medium"
    assert AgentSpec(classes=("short",), name="x", voice="v").label == "x"
