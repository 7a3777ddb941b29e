"""The isolation bench's burst rounds: each round's bound from the pure synthesis measured around
it, and the round of median efficiency as the printed figure."""

from __future__ import annotations

import argparse

import pytest

from bench.isolation import BurstResult, BurstRound, median_round, print_burst

CORES = 2


def one_round(jobs_per_s: float, before_s: float, after_s: float) -> BurstRound:
    result = BurstResult(
        jobs_per_s=jobs_per_s,
        latencies=[1.0] * 10,
        failures=[],
        cpu_s_by_process={"agent-1": 0.8, "agent-2": 0.8, "web": 0.1},
    )
    return BurstRound(result=result, pure_before=(before_s, before_s), pure_after=(after_s, after_s))


def test_a_rounds_bound_is_the_cores_over_the_mean_of_the_pure_times_around_it() -> None:
    one = one_round(9.0, 0.15, 0.25)
    assert one.pure_s == pytest.approx(0.2)
    assert one.bound(CORES) == pytest.approx(10.0)
    assert one.efficiency(CORES) == pytest.approx(0.9)


def test_the_median_round_is_chosen_by_efficiency_not_by_rate() -> None:
    fast_machine = one_round(12.0, 0.1, 0.1)  # the highest rate, efficiency 0.6
    slow_machine = one_round(8.0, 0.2, 0.2)  # the lowest rate, efficiency 0.8
    middle = one_round(7.0, 0.2, 0.2)  # efficiency 0.7
    assert median_round([fast_machine, slow_machine, middle], CORES) is middle
    assert median_round([slow_machine, fast_machine], CORES) is fast_machine  # even: the lower middle
    assert median_round([slow_machine], CORES) is slow_machine


def test_the_printed_efficiency_is_the_median_rounds_own_rate_over_its_own_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rounds = [one_round(12.0, 0.1, 0.1), one_round(8.0, 0.2, 0.2), one_round(7.0, 0.2, 0.2)]
    rounds[0].result.failures.append("burst x: failed")
    args = argparse.Namespace(burst_jobs=10, burst_clients=2, agent_threads=1)

    failures = print_burst(rounds, args, cores=CORES, co_run=(9.0, 11.0, 15.0), steal=(0.0, 0.0))

    lines = dict(line.split(" = ", 1) for line in capsys.readouterr().out.splitlines() if " = " in line)
    assert float(lines["burst jobs/s"]) == 7.0
    assert float(lines["burst bound jobs/s"]) == 10.0
    assert float(lines["burst efficiency"]) == 0.7
    assert lines["burst co-run ceiling jobs/s"].startswith("10.00")
    assert failures == ["burst x: failed"]  # every round's, not only the median one's
