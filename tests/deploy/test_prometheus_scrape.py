"""Prometheus finds every metrics endpoint the manifests declare, under the job names the alerts use."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .manifests import DEPLOY, REPO_ROOT, workloads

SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus-kubernetes.yml"


def relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' `replace` and `keep` relabelling (the two actions the config uses); None = dropped.

    Debian's promtool is built without Kubernetes service discovery, so it cannot load this file;
    the rules are exercised here instead, with Prometheus' defaults (separator ";", anchored
    regex "(.*)", replacement "$1").
    """
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                # Prometheus writes groups as $1 or ${1}; Python's expand wants \g<1>.
                template = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
                labels[rule["target_label"]] = match.expand(template)
        else:
            raise AssertionError(f"relabel action {action} is not simulated here")
    return labels


def pod_target(obj: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The labels Kubernetes pod discovery gives a target of this workload's pod."""
    template = obj["spec"]["template"]["metadata"]
    meta = {
        "__address__": f"10.1.2.3:{container['ports'][0]['containerPort']}" if container.get("ports") else "10.1.2.3",
        "__metrics_path__": "/metrics",
        "__meta_kubernetes_namespace": "tts",
        "__meta_kubernetes_pod_name": f"{obj['metadata']['name']}-abc12",
    }
    for key, value in template.get("annotations", {}).items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    for key, value in template.get("labels", {}).items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return meta


def scrape_rules() -> list[dict[str, Any]]:
    return yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"][0]["relabel_configs"]


def test_scraped_pods_announce_a_port_their_container_opens(objects: tuple[dict, ...]) -> None:
    scraped = 0
    for obj, container in workloads(objects):
        annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        scraped += 1
        ports = {port["containerPort"] for port in container.get("ports", [])}
        assert int(annotations["prometheus.io/port"]) in ports, obj["metadata"]["name"]
        assert annotations["prometheus.io/path"] == "/metrics"
    assert scraped >= 4  # gateway, consumer, two agent groups


def test_each_metrics_endpoint_becomes_a_target_with_the_job_the_alerts_select(objects: tuple[dict, ...]) -> None:
    jobs: dict[str, set[str]] = {}
    for obj, container in workloads(objects):
        target = relabel(scrape_rules(), pod_target(obj, container))
        annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            assert target is None, f"{obj['metadata']['name']} has no metrics but would be scraped"
            continue
        assert target is not None, f"{obj['metadata']['name']} would not be scraped"
        assert target["__address__"] == f"10.1.2.3:{annotations['prometheus.io/port']}"
        assert target["__metrics_path__"] == "/metrics"
        jobs.setdefault(target["job"], set()).add(target.get("agent_pool", ""))
    assert set(jobs) == {"tts-gateway", "tts-consumer", "tts-agent"}
    shared_groups, voice_pools = {"short", "medium-long"}, jobs["tts-agent"] - {"short", "medium-long"}
    assert jobs["tts-agent"] >= shared_groups
    assert all(pool.startswith("voice-") for pool in voice_pools), voice_pools
    alerts = (REPO_ROOT / "monitoring" / "alerts.yml").read_text()
    selected = set(re.findall(r'job="([^"]+)"', alerts))
    assert selected <= set(jobs), f"alerts select jobs nobody scrapes: {selected - set(jobs)}"


def test_the_relabel_simulation_drops_and_rewrites() -> None:
    # Control for the simulator itself: a pod without the annotation is dropped, a port moves.
    rules = scrape_rules()
    assert relabel(rules, {"__address__": "10.0.0.1:80"}) is None
    kept = relabel(
        rules,
        {
            "__address__": "10.0.0.1:80",
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_annotation_prometheus_io_port": "9200",
            "__meta_kubernetes_pod_label_app_kubernetes_io_component": "agent",
        },
    )
    assert kept is not None and kept["__address__"] == "10.0.0.1:9200" and kept["job"] == "tts-agent"
