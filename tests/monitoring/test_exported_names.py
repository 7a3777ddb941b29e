"""The metrics the processes really export: Prometheus conventions, and the contract both ways.

Reads the live registries (the gateway's and the consumer's default registry, the agent's
private one) instead of the documentation, so a metric added in code without being
documented, or documented without being exported, fails here.
"""

from __future__ import annotations

from prometheus_client import REGISTRY as GATEWAY_REGISTRY
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import Metric

import gateway.metrics  # noqa: F401 - registers the gateway's metrics
from synthesis_agent import metrics as agent_metrics

from .test_dashboards import DIMENSIONLESS_HISTOGRAMS, documented_metrics

DEFAULT_BUCKETS = tuple(Histogram.DEFAULT_BUCKETS)


def exported(registry: CollectorRegistry, prefix: str) -> dict[str, Metric]:
    """Exposed name (counters with `_total`) -> family, for our own metrics only."""
    families = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        if name.startswith(prefix):
            families[name] = family
    return families


def our_metrics() -> dict[str, Metric]:
    return {
        **exported(GATEWAY_REGISTRY, "tts_gateway_"),
        **exported(agent_metrics.REGISTRY, "tts_agent_"),
    }


def test_exported_names_are_exactly_the_documented_ones() -> None:
    exported_names = set(our_metrics())
    documented = set(documented_metrics())
    assert exported_names - documented == set(), "exported but not in docs/CONTRACTS.md"
    assert documented - exported_names == set(), "documented in docs/CONTRACTS.md but not exported"


def test_exported_types_match_the_contract() -> None:
    documented = documented_metrics()
    mismatched = {
        name: (family.type, documented[name])
        for name, family in our_metrics().items()
        if family.type != documented.get(name, family.type)
    }
    assert mismatched == {}


def test_counters_end_in_total_and_durations_are_seconds() -> None:
    problems = []
    for name, family in our_metrics().items():
        if family.type == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: counter without _total")
        if family.type != "counter" and name.endswith("_total"):
            problems.append(f"{name}: {family.type} named like a counter")
        if family.type == "histogram" and name not in DIMENSIONLESS_HISTOGRAMS and not name.endswith("_seconds"):
            problems.append(f"{name}: a duration histogram must be in seconds")
    assert problems == []


def test_histograms_have_explicit_buckets() -> None:
    checked = 0
    for name, family in our_metrics().items():
        if family.type != "histogram":
            continue
        bounds = tuple(float(sample.labels["le"]) for sample in family.samples if sample.name.endswith("_bucket"))
        # Unlabelled histograms expose their buckets at once; labelled ones only per child.
        collector = _collector(name)
        upper = tuple(float(b) for b in collector._upper_bounds) if collector is not None else bounds
        assert upper, f"{name}: no buckets"
        assert upper[:-1] != DEFAULT_BUCKETS, f"{name}: uses prometheus_client's default buckets"
        checked += 1
    assert checked >= 8


def _collector(name: str) -> Histogram | None:
    for registry in (GATEWAY_REGISTRY, agent_metrics.REGISTRY):
        collector = registry._names_to_collectors.get(name)
        if isinstance(collector, Histogram):
            return collector
    return None
