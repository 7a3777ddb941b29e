"""`make run` restarts a dead process, but not one that keeps dying."""

from __future__ import annotations

import pytest

from devstack.restarts import RestartBudget


def test_restarts_are_granted_until_the_budget_of_the_window_is_spent() -> None:
    budget = RestartBudget(max_restarts=2, window_s=60)
    assert budget.allow("agent-1", 0.0) and budget.allow("agent-1", 10.0)
    assert not budget.allow("agent-1", 20.0)  # a third death within a minute: a crash loop
    assert budget.allow("agent-2", 20.0)  # counted per process
    assert budget.allow("agent-1", 61.0)  # the first restart has left the window


def test_the_budget_is_checked() -> None:
    with pytest.raises(ValueError):
        RestartBudget(max_restarts=-1)
    with pytest.raises(ValueError):
        RestartBudget(window_s=0)


def test_a_respawned_web_starts_with_no_metric_files_of_the_dead_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from devstack.stack import Stack, StackConfig

    stack = Stack(StackConfig(var_dir=tmp_path))
    spawned: list[str] = []
    monkeypatch.setattr(stack, "_spawn", lambda name, command, env=None: spawned.append(name))
    multiproc_dir = tmp_path / "prometheus-multiproc"
    multiproc_dir.mkdir()
    (multiproc_dir / "gauge_livesum_4242.db").write_bytes(b"old worker")
    (multiproc_dir / "counter_4242.db").write_bytes(b"old worker")
    stack._launches["web"] = (["gunicorn"], {})
    stack._launches["consumer"] = (["consumer"], {})
    stack.respawn("consumer")
    assert len(list(multiproc_dir.iterdir())) == 2  # other processes leave the web's files alone
    stack.respawn("web")
    assert spawned == ["consumer", "web"]
    assert multiproc_dir.is_dir() and list(multiproc_dir.iterdir()) == []
