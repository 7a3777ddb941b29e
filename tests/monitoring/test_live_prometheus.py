"""A real Prometheus scrapes the running stack: every dashboard panel shows data and every alert
rule evaluates.

The stack comes from the `running_stack` fixture (gateway web, event consumer, agents as real
processes). This module starts /usr/bin/prometheus on a free loopback port with the production
scrape config (monitoring/prometheus.yml) pointed at the stack's ports, scraping every second,
with the production alert rules; it completes a few jobs and then queries every panel and
alert expression.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..waiting import wait_until
from .promql import (
    ALERTS_FILE,
    PROMETHEUS_CONFIG,
    alert_expressions,
    dashboard_expressions,
    metric_names,
    query,
    query_expressions,
    rule_health,
    targets,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
STARTUP_TIMEOUT_S = 30.0
SCRAPE_TIMEOUT_S = 60.0

# Metrics that only get a series when something goes wrong; a panel reading nothing else may be
# empty after a run where every job succeeded.
ONLY_ON_TROUBLE = {
    "tts_agent_failures_total": "an agent failure (reason label) creates the series",
}

SHORT_TEXT = "The quick brown fox jumps over the lazy dog."
OTHER_SHORT_TEXT = "Monitoring checks that every panel of the dashboards shows data. It is 9:30 now."
MEDIUM_TEXT = " ".join(
    [
        "A medium length text goes to its own topic and is synthesized by the agent that serves",
        "the medium and long classes, so the agents dashboard shows both agents at work.",
    ]
    * 3
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def static_target(url: str, **labels: str) -> dict[str, Any]:
    """A static_configs entry scraping exactly this URL (scheme, host:port and path)."""
    parts = urllib.parse.urlsplit(url)
    return {
        "targets": [parts.netloc],
        "labels": {"__scheme__": parts.scheme or "http", "__metrics_path__": parts.path or "/metrics", **labels},
    }


def live_config(stack: Any) -> dict[str, Any]:
    """monitoring/prometheus.yml with the stack's addresses, 1 s scrapes and absolute rule paths.

    The job names, and so the `job` labels the alerts select on, stay those of production.
    """
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ALERTS_FILE)]
    gateway_metrics = stack.gateway_url.rstrip("/") + "/metrics"
    addresses = {
        "tts-gateway": [static_target(gateway_metrics)],
        "tts-consumer": [static_target(stack.consumer_metrics_url)],
        "tts-agent": [static_target(url, agent_pool="live") for url in stack.agent_metrics_urls],
    }
    scrape_configs = []
    for scrape in config["scrape_configs"]:
        job = scrape["job_name"]
        if job not in addresses:
            continue  # Prometheus' own job: not part of the service
        scrape_configs.append({"job_name": job, "static_configs": addresses[job]})
    config["scrape_configs"] = scrape_configs
    return config


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Any:
    """The `running_stack` fixture, which must be visible from tests/monitoring.

    Looked up by name so that its absence reads as an explanation, not a bare
    "fixture not found": conftest fixtures are only visible below their own folder.
    """
    try:
        return request.getfixturevalue("running_stack")
    except pytest.FixtureLookupError:
        pytest.fail(
            "fixture `running_stack` is not visible from tests/monitoring: define it in tests/conftest.py "
            "(a fixture in tests/integration/conftest.py serves only tests/integration)"
        )


@pytest.fixture(scope="module")
def prometheus(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the stack; yields its base URL; killed at teardown."""
    binary = shutil.which(PROMETHEUS_BIN)
    if binary is None:
        pytest.fail(f"Prometheus server not found at {PROMETHEUS_BIN} (apt-get install -y prometheus)")
    assert stack.agent_metrics_urls, "the stack runs no agent with a metrics port"
    workdir = Path(tmp_path_factory.mktemp("prometheus"))
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(live_config(stack), sort_keys=False))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/-/ready", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(ready, STARTUP_TIMEOUT_S, "prometheus to be ready")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def scraped(prometheus: str, stack: Any) -> str:
    """Prometheus has scraped every target before and after a few completed jobs."""

    expected_targets = 2 + len(stack.agent_metrics_urls)

    def all_targets_up() -> bool:
        found = targets(prometheus)
        return len(found) == expected_targets and all(target["health"] == "up" for target in found)

    if not wait_until(all_targets_up, SCRAPE_TIMEOUT_S, "all targets up", fail=False):
        states = [f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in targets(prometheus)]
        pytest.fail(f"expected {expected_targets} targets up, got:\n" + "\n".join(states))

    texts = [SHORT_TEXT, SHORT_TEXT, OTHER_SHORT_TEXT, MEDIUM_TEXT]  # the repeat hits the cache
    for text in texts:
        job = stack.submit_and_wait(text)
        assert job["status"] == "succeeded", job

    def finished_jobs() -> float:
        answer = query(prometheus, "sum(tts_gateway_jobs_finished_total)")
        result = answer.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else 0.0

    wait_until(lambda: finished_jobs() >= len(texts), SCRAPE_TIMEOUT_S, "the finished jobs to be scraped")
    time.sleep(5)  # a few more scrapes: every new series has the two samples rate() needs

    def rules_evaluated() -> bool:
        rules = rule_health(prometheus)
        return bool(rules) and all(not rule["lastEvaluation"].startswith("0001") for rule in rules)

    wait_until(rules_evaluated, SCRAPE_TIMEOUT_S, "every alert rule to be evaluated once")
    return prometheus


# --------------------------------------------------------------------------------------------
# Tests


def test_every_panel_expression_returns_data(scraped: str) -> None:
    results = query_expressions(scraped, dashboard_expressions())
    assert results
    errors = [f"{r.expression.source}: {r.error}\n    {r.query}" for r in results if not r.ok]
    assert not errors, "panel queries Prometheus rejects:\n" + "\n".join(errors)
    empty = [
        f"{r.expression.source}\n    {r.query}"
        for r in results
        if r.empty and not metric_names(r.expression.expr) <= ONLY_ON_TROUBLE.keys()
    ]
    assert not empty, (
        "panels with no data after successful jobs (a labelled metric has no series before its first "
        "increment: the exporter should initialise its label values at startup, e.g. "
        "`PREEMPTIONS.labels(length_class=c)` for each class it serves, so panels show 0):\n" + "\n".join(empty)
    )


def test_every_alert_expression_evaluates(scraped: str) -> None:
    results = query_expressions(scraped, alert_expressions())
    errors = [f"{r.expression.source}: {r.error}" for r in results if not r.ok]
    assert not errors, "\n".join(errors)


def test_every_alert_rule_is_loaded_and_healthy(scraped: str) -> None:
    rules = rule_health(scraped)
    loaded = {rule["name"] for rule in rules}
    expected = {expression.source.rsplit(" / ", 1)[1] for expression in alert_expressions()}
    assert loaded == expected
    unhealthy = [
        f"{rule['name']}: {rule['health']} {rule.get('lastError', '')}" for rule in rules if rule["health"] != "ok"
    ]
    assert not unhealthy, "\n".join(unhealthy)


def test_availability_alerts_are_quiet_on_a_healthy_stack(scraped: str) -> None:
    """Every target is up, so no availability alert may even be pending (checks the selectors)."""
    noisy = [
        f"{rule['name']}: {alert['state']} {alert['labels']}"
        for rule in rule_health(scraped)
        if rule["group"] == "tts-availability"
        for alert in rule.get("alerts", [])
    ]
    assert not noisy, "availability alerts active while every target is up:\n" + "\n".join(noisy)
