"""docker-compose.yml is the production shape: it must validate and hold every part."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "pulsar",
    "migrate",
    "web",
    "consumer",
    "agent",
    "prometheus",
    "grafana",
}


def test_docker_compose_config_validates() -> None:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed; scripts/ensure_services.sh installs it")
    result = subprocess.run(["docker-compose", "config"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == EXPECTED_SERVICES


def test_agents_serve_every_class_and_app_points_at_real_services() -> None:
    config = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = config["services"]
    # Work-conserving by default: every agent serves every class, short first.
    assert services["agent"]["command"][-2:] == ["--classes", "short,medium,long"]
    assert services["agent"]["deploy"]["replicas"] == 2
    environment = services["consumer"]["environment"]
    assert environment["PULSAR_URL"].startswith("pulsar://pulsar:")
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["REDIS_URL"].startswith("redis://redis:")
    assert "allkeys-lru" in services["redis"]["command"]
