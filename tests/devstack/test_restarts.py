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
