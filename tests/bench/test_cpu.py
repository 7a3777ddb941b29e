"""The machine-wide tick counts the benchmarks report steal time from."""

from __future__ import annotations

import sys

import pytest

from bench.cpu import machine_ticks, steal_share


def test_the_stolen_share_is_stolen_ticks_over_all_ticks_between_two_readings() -> None:
    assert steal_share((10, 1000), (40, 1600)) == pytest.approx(30 / 600)
    assert steal_share((10, 1000), (10, 1000)) == 0.0  # no tick passed: nothing to divide


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_the_machine_ticks_grow_and_steal_is_part_of_them() -> None:
    steal, total = machine_ticks()
    assert 0 <= steal <= total and total > 0
    sum(range(3_000_000))  # let a few ticks pass
    later = machine_ticks()
    assert later[1] >= total and later[0] >= steal
    assert 0.0 <= steal_share((steal, total), later) <= 1.0
