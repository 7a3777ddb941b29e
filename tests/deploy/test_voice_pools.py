"""Voice pools: deploy/kubernetes/voice_pool.py writes them, the example overlay is its output, and
the KEDA checks catch a dedicated voice without a pool."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from . import test_keda_scaledobjects as keda
from .manifests import DEPLOY, rendered

EXAMPLE = DEPLOY / "overlays" / "two-voices"
# The command that wrote the committed example overlay (docs/SCALING.md shows it too).
EXAMPLE_ARGS = ["--base", "../production", "--voices-pvc", "tts-voices", "--voice", "en_GB-extra-medium", "--max", "4"]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voice_pool", DEPLOY / "voice_pool.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


voice_pool = load_generator()


def test_the_example_overlay_is_what_the_generator_writes(tmp_path: Path) -> None:
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "production").symlink_to(DEPLOY / "overlays" / "production")
    target = tmp_path / "overlays" / "two-voices"
    assert voice_pool.main([str(target), *EXAMPLE_ARGS]) == 0
    written = {path.name: path.read_text() for path in target.iterdir()}
    committed = {path.name: path.read_text() for path in EXAMPLE.iterdir()}
    assert written == committed, "re-run: .venv/bin/python deploy/kubernetes/voice_pool.py overlays/two-voices ..."


def test_options_follow_their_voice_and_a_rerun_drops_removed_pools(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("namespace: x\nresources: []\n")
    overlay = tmp_path / "pools"
    args = ["--base", "../base", "--max", "3", "--voice", "en_GB-a-low", "--voice", "fr_FR-b-medium", "--min", "1"]
    voice_pool.main([str(overlay), *args])
    a = (overlay / "tts-agent-voice-en-gb-a-low.yaml").read_text()
    b = (overlay / "tts-agent-voice-fr-fr-b-medium.yaml").read_text()
    assert "minReplicaCount: 0\n  maxReplicaCount: 3" in a and "minReplicaCount: 1\n  maxReplicaCount: 3" in b
    assert "TTS_DEDICATED_VOICES=en_GB-a-low,fr_FR-b-medium" in (overlay / "kustomization.yaml").read_text()
    voice_pool.main([str(overlay), "--base", "../base", "--voice", "en_GB-a-low"])
    assert sorted(path.name for path in overlay.iterdir()) == ["kustomization.yaml", "tts-agent-voice-en-gb-a-low.yaml"]


@pytest.mark.parametrize(
    "args",
    [
        ["--voice", "bad/voice"],
        ["--voice", "dlq"],
        ["--voice", "en_US-a", "--voice", "en-us-a"],  # one object name for two voices
        ["--voice", "a", "--min", "3", "--max", "2"],
    ],
)
def test_bad_pools_are_refused(tmp_path: Path, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        voice_pool.main([str(tmp_path / "o"), *args])
    assert exit_info.value.code == 2


def test_voice_ids_become_dns_labels() -> None:
    assert voice_pool.voice_slug("en_GB-extra-medium") == "en-gb-extra-medium"
    assert voice_pool.voice_slug("My.Voice__2") == "my-voice-2"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: overlays cannot be rendered")
def test_a_dedicated_voice_without_a_pool_fails_the_keda_check() -> None:
    # Control: drop the pool from the rendered example; the routing check must notice.
    objects = tuple(obj for obj in rendered("two-voices") if not obj["metadata"]["name"].startswith("tts-agent-voice-"))
    with pytest.raises(AssertionError, match="voices with a pool"):
        keda.test_every_agent_group_scales_on_the_topics_and_subscription_its_agents_consume(objects)
