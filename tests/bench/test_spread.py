"""Percentiles and the bootstrap interval the isolation bench prints beside `b/a`."""

from __future__ import annotations

import math
import random

import pytest

from bench.spread import percentile, ratio_interval


def test_percentiles_interpolate_between_order_statistics() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == pytest.approx(4.8)
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 5.0
    assert math.isnan(percentile([], 0.5))


def test_equal_samples_give_a_point_interval_at_their_ratio() -> None:
    assert ratio_interval([2.0] * 30, [1.0] * 30) == (2.0, 2.0)


def test_the_interval_holds_the_ratio_of_the_samples_and_is_reproducible() -> None:
    chance = random.Random(7)
    idle = [chance.lognormvariate(-1.6, 0.15) for _ in range(60)]
    loaded = [1.1 * chance.lognormvariate(-1.6, 0.15) for _ in range(60)]
    low, high = ratio_interval(loaded, idle)
    assert low < percentile(loaded, 0.95) / percentile(idle, 0.95) < high
    assert (low, high) == ratio_interval(loaded, idle)  # seeded
    assert (low, high) != ratio_interval(loaded, idle, seed=1)


def test_fewer_jobs_give_a_wider_interval() -> None:
    chance = random.Random(3)
    idle = [chance.lognormvariate(-1.6, 0.2) for _ in range(600)]
    loaded = [chance.lognormvariate(-1.6, 0.2) for _ in range(600)]
    low_many, high_many = ratio_interval(loaded, idle)
    low_few, high_few = ratio_interval(loaded[:30], idle[:30])
    assert high_few - low_few > 2 * (high_many - low_many)


def test_three_slow_jobs_in_sixty_leave_the_p95_ratio_wide_open() -> None:
    # The bench's case: a p95 of 60 jobs rests on its slowest three.
    idle = [0.20] * 60
    loaded = [0.20] * 57 + [0.30] * 3
    low, high = ratio_interval(loaded, idle)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.5)


def test_no_samples_give_nan_and_bad_settings_are_refused() -> None:
    assert all(math.isnan(bound) for bound in ratio_interval([], [1.0]))
    with pytest.raises(ValueError, match="confidence"):
        ratio_interval([1.0], [1.0], confidence=1.0)
    with pytest.raises(ValueError, match="draws"):
        ratio_interval([1.0], [1.0], draws=0)
