"""The Grafana dashboards and alert rules only query metrics that something exports.

Fast and self-contained: reads monitoring/ and docs/CONTRACTS.md, imports django-prometheus to
learn the names it exports. No services, no promtool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Histogram

from .promql import (
    ALERTS_FILE,
    DASHBOARDS_DIR,
    MONITORING_DIR,
    PROMETHEUS_CONFIG,
    REPO_ROOT,
    Expression,
    alert_expressions,
    dashboard_expressions,
    iter_panels,
    load_alert_rules,
    load_dashboards,
    metric_names,
    substitute_variables,
)

CONTRACTS = REPO_ROOT / "docs" / "CONTRACTS.md"
DATASOURCES = MONITORING_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = MONITORING_DIR / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"

EXPECTED_DASHBOARDS = {"tts-overview": "Service overview", "tts-agents": "Agents"}
SCRAPE_JOBS = {"tts-gateway", "tts-consumer", "tts-agent"}
# Series Prometheus makes itself for every target.
SYNTHETIC_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Histograms whose value is not a duration (so they are not in seconds).
DIMENSIONLESS_HISTOGRAMS = {"tts_agent_realtime_factor"}


# --------------------------------------------------------------------------------------------
# What is exported


def documented_metrics() -> dict[str, str]:
    """name -> type, from the metric tables of docs/CONTRACTS.md (the binding contract)."""
    text = CONTRACTS.read_text()
    section = text.split("## Metric names", 1)[1]
    rows = re.findall(r"^\|\s*`([a-z_:][a-z0-9_:]*)(?:\{[^}]*\})?`\s*\|\s*(\w+)\s*\|", section, re.MULTILINE)
    return dict(rows)


def django_prometheus_metrics() -> dict[str, str]:
    """name -> type for the django_http_* metrics of the installed django-prometheus.

    Registers nothing: the middleware's Metrics class is asked for its declarations only.
    """
    from django_prometheus.middleware import Metrics

    declared: dict[str, str] = {}

    class Recorder(Metrics):
        def register_metric(self, metric_cls, name, documentation, labelnames=(), **kwargs):
            kind = {Counter: "counter", Histogram: "histogram"}.get(metric_cls, "gauge")
            # prometheus_client exposes a counter as <name without _total>_total.
            exposed = name.removesuffix("_total") + "_total" if kind == "counter" else name
            declared[exposed] = kind
            return None

    Recorder()
    return declared


def series_names(name: str, kind: str) -> set[str]:
    """The sample names one metric shows up as in Prometheus."""
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def exported_series() -> set[str]:
    names = set(SYNTHETIC_SERIES)
    for source in (documented_metrics(), django_prometheus_metrics()):
        for name, kind in source.items():
            names |= series_names(name, kind)
    return names


def every_expression() -> list[Expression]:
    return dashboard_expressions() + alert_expressions()


# --------------------------------------------------------------------------------------------
# The documented metrics themselves


def test_contract_tables_are_parsed() -> None:
    metrics = documented_metrics()
    assert len(metrics) >= 20, metrics
    assert metrics["tts_gateway_job_latency_seconds"] == "histogram"
    assert metrics["tts_agent_cache_requests_total"] == "counter"
    assert set(metrics.values()) <= {"counter", "gauge", "histogram"}, metrics


def test_documented_metric_naming_conventions() -> None:
    problems = []
    for name, kind in documented_metrics().items():
        if not re.fullmatch(r"tts_(gateway|agent)_[a-z0-9_]+", name):
            problems.append(f"{name}: not tts_gateway_* or tts_agent_*")
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: counter without _total")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{name}: {kind} ending in _total")
        if kind == "histogram" and name not in DIMENSIONLESS_HISTOGRAMS and not name.endswith("_seconds"):
            problems.append(f"{name}: duration histogram not in _seconds")
        if re.search(r"_(ms|milliseconds|minutes|hours)(_|$)", name):
            problems.append(f"{name}: durations are in seconds")
    assert not problems, "\n".join(problems)


def test_django_prometheus_exports_the_names_the_dashboards_rely_on() -> None:
    django = django_prometheus_metrics()
    assert django["django_http_requests_total_by_view_transport_method_total"] == "counter"
    assert django["django_http_responses_total_by_status_view_method_total"] == "counter"
    assert django["django_http_requests_latency_seconds_by_view_method"] == "histogram"


# --------------------------------------------------------------------------------------------
# Every expression reads exported metrics


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, length_class) (rate(a_seconds_bucket{length_class="short"}'
        "[$__rate_interval]))) / on (job) group_left (x) b_total offset 5m or vector(0) "
        "and min_over_time(max(c_gauge)[10m:1m]) > 10"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_gauge"}
    assert metric_names('absent(up{job="tts-agent"} == 1)') == {"up"}


def test_there_are_expressions_to_check() -> None:
    kinds = {expression.kind for expression in every_expression()}
    assert kinds == {"panel", "alert"}


@pytest.mark.parametrize("expression", every_expression(), ids=lambda e: e.source)
def test_expression_uses_only_exported_metrics(expression: Expression) -> None:
    names = metric_names(expression.expr)
    assert names, f"{expression.source}: no metric found in {expression.expr!r}"
    unknown = names - exported_series()
    assert not unknown, (
        f"{expression.source} queries {sorted(unknown)}, which neither docs/CONTRACTS.md nor "
        f"django-prometheus exports: {expression.expr}"
    )


@pytest.mark.parametrize("expression", every_expression(), ids=lambda e: e.source)
def test_expression_is_well_formed(expression: Expression) -> None:
    promql = substitute_variables(expression.expr)  # raises on an unknown Grafana variable
    assert "$" not in promql.replace("$labels", "").replace("$value", ""), promql
    assert promql.count("(") == promql.count(")"), promql
    assert promql.count("{") == promql.count("}"), promql
    assert promql.count("[") == promql.count("]"), promql
    # rate()/increase() only make sense on counters and histogram buckets/sums/counts.
    kinds = {**documented_metrics(), **django_prometheus_metrics()}
    for function, name in re.findall(r"\b(rate|increase|irate)\(\s*([a-z_:][a-z0-9_:]*)", promql):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert kinds.get(name) == "counter" or kinds.get(base) == "histogram", (
            f"{expression.source}: {function}() of {name}, which is not a counter"
        )


def test_label_values_used_are_documented() -> None:
    allowed = {
        "length_class": {"short", "medium", "long"},
        "status": {"succeeded", "failed", "cancelled"},
        "result": {"hit", "miss", "error", "ok", "applied", "duplicate", "stale", "invalid", "rejected"},
        "job": SCRAPE_JOBS,
    }
    for expression in every_expression():
        for label, value in re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', expression.expr):
            if label in allowed:
                values = set(value.split("|"))
                assert values <= allowed[label], f"{expression.source}: {label}={value!r}"


# --------------------------------------------------------------------------------------------
# Grafana provisioning


def provisioned_datasource_uid() -> str:
    document = yaml.safe_load(DATASOURCES.read_text())
    (datasource,) = document["datasources"]
    return datasource["uid"]


def test_datasource_provisioning() -> None:
    document = yaml.safe_load(DATASOURCES.read_text())
    assert document["apiVersion"] == 1
    (datasource,) = document["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] and datasource["name"]


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    document = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_expected_dashboards_exist() -> None:
    found = {dashboard["uid"]: dashboard["title"] for dashboard in load_dashboards().values()}
    assert found == EXPECTED_DASHBOARDS


@pytest.mark.parametrize("path", sorted(DASHBOARDS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard: dict[str, Any] = load_dashboards()[path]
    uid = provisioned_datasource_uid()
    assert isinstance(dashboard["uid"], str) and 0 < len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = list(iter_panels(dashboard["panels"]))
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        where = f"{path.name} / {panel.get('title')}"
        assert panel.get("title"), where
        assert panel.get("type"), where
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= grid.keys(), where
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{where}: overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
        targets = panel.get("targets")
        assert targets, f"{where}: no query"
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in targets:
            assert target.get("expr", "").strip(), f"{where} / {target['refId']}: empty expr"
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], where


def test_range_queries_use_rate_interval() -> None:
    """Panels follow the dashboard's zoom: ranges come from $__rate_interval, not constants."""
    for expression in dashboard_expressions():
        for window in re.findall(r"\[([^\]]+)\]", expression.expr):
            assert window == "$__rate_interval", f"{expression.source}: [{window}]"


# --------------------------------------------------------------------------------------------
# Alert rules and scrape config (content; promtool checks the syntax in test_alert_rules.py)


def test_alert_rules_have_severity_and_annotations() -> None:
    rules = load_alert_rules(ALERTS_FILE)
    assert rules
    names = [rule["alert"] for _, rule in rules]
    assert len(names) == len(set(names))
    for _, rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
        assert rule.get("for"), f"{rule['alert']}: fires on one bad evaluation"


def test_alerts_cover_the_operational_risks() -> None:
    text = {rule["alert"]: str(rule["expr"]) for _, rule in load_alert_rules(ALERTS_FILE)}
    assert 'tts_gateway_job_latency_seconds_bucket{length_class="short"}' in text["TTSShortJobLatencyHigh"]
    assert "tts_gateway_outbox_backlog" in text["TTSOutboxBacklogStuck"]
    assert 'status="failed"' in text["TTSJobFailureRateHigh"]
    assert 'up{job="tts-agent"} == 0' in text["TTSAgentDown"]
    assert 'result="error"' in text["TTSAgentCacheErrors"]


def test_alert_rule_jobs_exist_in_scrape_config() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    assert jobs >= SCRAPE_JOBS
    for expression in every_expression():
        for job in re.findall(r'job\s*=\s*"([^"]+)"', expression.expr):
            assert job in jobs, f"{expression.source}: job {job!r} is not scraped"


def test_scrape_config_targets_the_compose_services() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert "alerts.yml" in config["rule_files"]
    assert config["global"]["scrape_interval"] == "15s"
    by_job = {scrape["job_name"]: scrape for scrape in config["scrape_configs"]}
    assert by_job["tts-gateway"]["static_configs"][0]["targets"] == ["web:8000"]
    assert by_job["tts-gateway"]["metrics_path"] == "/metrics"
    assert by_job["tts-consumer"]["static_configs"][0]["targets"] == ["consumer:9101"]
    (dns,) = by_job["tts-agent"]["dns_sd_configs"]
    assert set(dns["names"]) == {"agent"}
    assert dns["port"] == 9200
