"""Helpers shared by the monitoring tests: find every PromQL expression the project ships
(Grafana panels and alert rules), name the metrics they read, and run them against a live
Prometheus.

Nothing here needs a running service except :func:`query_expressions` and :func:`rule_health`,
which take the base URL of a Prometheus server (``http://127.0.0.1:9090``).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_DIR = REPO_ROOT / "monitoring"
DASHBOARDS_DIR = MONITORING_DIR / "grafana" / "dashboards"
ALERTS_FILE = MONITORING_DIR / "alerts.yml"
PROMETHEUS_CONFIG = MONITORING_DIR / "prometheus.yml"

# What Grafana's built-in interval variables become when an expression is sent to Prometheus
# directly. One minute is four scrapes at the production interval and plenty at 1 s.
DEFAULT_VARIABLES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "__interval_ms": "15000",
    "__range_s": "300",
    "__range_ms": "300000",
}


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from (for readable failure messages)."""

    source: str  # "dashboard tts-overview / Failure rate / A" or "alert tts-jobs / TTSJobFailureRateHigh"
    expr: str  # as written in the file, Grafana variables included
    kind: str  # "panel" or "alert"


@dataclass
class QueryResult:
    expression: Expression
    query: str  # what was sent, variables substituted
    status: str  # "success" or "error"
    result_type: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "success" and not self.error

    @property
    def empty(self) -> bool:
        return not self.samples


# --------------------------------------------------------------------------------------------
# Finding the expressions


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def iter_panels(panels: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    """Every panel, the ones nested in collapsed rows included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_expressions(directory: Path = DASHBOARDS_DIR) -> list[Expression]:
    found = []
    for dashboard in load_dashboards(directory).values():
        for panel in iter_panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    source = f"dashboard {dashboard['uid']} / {panel.get('title')} / {target.get('refId')}"
                    found.append(Expression(source=source, expr=target["expr"], kind="panel"))
    return found


def load_alert_rules(path: Path = ALERTS_FILE) -> list[tuple[str, dict[str, Any]]]:
    """(group name, rule) for every rule in a Prometheus rule file."""
    document = yaml.safe_load(path.read_text())
    return [(group["name"], rule) for group in document["groups"] for rule in group["rules"]]


def alert_expressions(path: Path = ALERTS_FILE) -> list[Expression]:
    found = []
    for group, rule in load_alert_rules(path):
        name = rule.get("alert") or rule.get("record")
        found.append(Expression(source=f"alert {group} / {name}", expr=str(rule["expr"]), kind="alert"))
    return found


def all_expressions() -> list[Expression]:
    return dashboard_expressions() + alert_expressions()


# --------------------------------------------------------------------------------------------
# Reading an expression

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute_variables(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables ($__rate_interval, ${__interval}, [[var]]) by concrete values.

    Raises KeyError for a variable with no value: such an expression cannot be sent as is.
    """
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


# Words that are PromQL syntax, not metric names.
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_NUMBER_SUFFIX = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]*\b", re.IGNORECASE)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (``__name__`` matchers are not supported)."""
    text = substitute_variables(expr)
    text = _STRING.sub('""', text)
    text = _BRACES.sub(" ", text)  # label matchers
    text = _BRACKETS.sub(" ", text)  # range and subquery durations
    text = _LABEL_LIST.sub(" ", text)  # by (...), on (...), group_left (...)
    text = _NUMBER_SUFFIX.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue  # a function call or an operator
        names.add(word)
    return names


# --------------------------------------------------------------------------------------------
# Talking to a live Prometheus


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        # Prometheus answers 400/422 with a JSON body naming the PromQL error.
        body = error.read()
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": f"HTTP {error.code}: {body[:200]!r}"}


def query(base_url: str, promql: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """One instant query through /api/v1/query; returns Prometheus' JSON answer."""
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    return _get_json(url, timeout)


def query_expressions(
    base_url: str,
    expressions: Iterable[Expression] | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> list[QueryResult]:
    """Run every expression (all panels and alerts by default) as an instant query.

    Never raises for a bad expression: each result carries its status and error, so a test
    can report every broken expression at once.
    """
    results = []
    for expression in all_expressions() if expressions is None else expressions:
        try:
            promql = substitute_variables(expression.expr, variables)
        except KeyError as error:
            results.append(QueryResult(expression, expression.expr, "error", error=str(error)))
            continue
        try:
            answer = query(base_url, promql, timeout=timeout)
        except (OSError, ValueError) as error:
            results.append(QueryResult(expression, promql, "error", error=f"{type(error).__name__}: {error}"))
            continue
        data = answer.get("data") or {}
        result = data.get("result")
        samples = result if isinstance(result, list) else ([{"value": result}] if result else [])
        results.append(
            QueryResult(
                expression,
                promql,
                answer.get("status", "error"),
                result_type=data.get("resultType", ""),
                samples=samples,
                error=answer.get("error", ""),
            )
        )
    return results


def rule_health(base_url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every loaded rule from /api/v1/rules: name, group, health, lastError, lastEvaluation."""
    answer = _get_json(f"{base_url.rstrip('/')}/api/v1/rules", timeout)
    rules = []
    for group in answer.get("data", {}).get("groups", []):
        for rule in group.get("rules", []):
            rules.append({"group": group.get("name"), **rule})
    return rules


def targets(base_url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Active scrape targets from /api/v1/targets (job, instance, health, lastError)."""
    answer = _get_json(f"{base_url.rstrip('/')}/api/v1/targets?state=active", timeout)
    return answer.get("data", {}).get("activeTargets", [])
