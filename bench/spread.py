"""Percentiles of latency samples, and how far a ratio of two of them could move by chance.

A p95 of 60 jobs rests on its three slowest: one slow job more or less moves `b/a` by 0.1 or
more. The bootstrap interval says how wide that is for the samples at hand, so a reader can tell
a ratio that misses a goal from one that merely drew a slow job.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, linear between order statistics; nan if empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio_interval(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    q: float = 0.95,
    confidence: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of percentile(numerator, q) / percentile(denominator, q).

    Each draw resamples both samples with replacement, each to its own size; the interval is the
    central `confidence` share of the draws' ratios. Seeded, so one run's samples give one answer.
    """
    if not numerator or not denominator:
        return float("nan"), float("nan")
    if not 0 < confidence < 1 or draws < 1:
        raise ValueError(f"confidence must be in (0, 1) and draws >= 1, got {confidence} and {draws}")
    chance = random.Random(seed)
    ratios = sorted(
        percentile(chance.choices(numerator, k=len(numerator)), q)
        / percentile(chance.choices(denominator, k=len(denominator)), q)
        for _ in range(draws)
    )
    tail = (1 - confidence) / 2
    return percentile(ratios, tail), percentile(ratios, 1 - tail)
