"""docker-compose.yml is the production shape: it must validate, hold every part, take every
secret from `.env` (refusing to start without one) and publish only the TLS proxy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from make_env import make_env  # noqa: E402

EXPECTED_SERVICES = {
    "proxy",
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
REQUIRED = {
    "DJANGO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "PULSAR_TOKEN_SECRET_KEY",
    "PULSAR_AUTH_TOKEN",
}


def _compose_config(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed; scripts/ensure_services.sh installs it")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    # Only the env file decides: variables of the test's own environment must not leak in.
    clean_env = {key: value for key, value in os.environ.items() if key not in make_env(site_host="x")}
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "config"],
        cwd=REPO_ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_config(tmp_path: Path) -> dict:
    """The interpolated configuration with a fresh `.env` from scripts/make_env.py."""
    result = _compose_config(tmp_path, make_env(site_host="tts.example.org"))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    config = compose_config(tmp_path)
    assert set(config["services"]) == EXPECTED_SERVICES


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    values = make_env(site_host="localhost")
    values[missing] = ""
    result = _compose_config(tmp_path, values)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_env_example_names_every_variable_and_holds_no_secret() -> None:
    compose_text = (REPO_ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", compose_text))
    required = set(re.findall(r"\$\{(\w+):\?", compose_text))
    example = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required == REQUIRED
    assert used <= set(example)
    assert all(example[name] == "" for name in REQUIRED)  # copying the example gives no known secret
    assert set(make_env(site_host="x")) == set(example)


def _port(entry: str | dict) -> tuple[str, int]:
    """(host address, container port) of a port entry in either syntax docker-compose prints."""
    if isinstance(entry, dict):
        return entry.get("host_ip", ""), int(entry["target"])
    parts = entry.split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else ""), int(parts[-1])


def test_only_the_tls_proxy_is_published(tmp_path: Path) -> None:
    services = compose_config(tmp_path)["services"]
    published = {
        name: [_port(entry) for entry in service["ports"]] for name, service in services.items() if service.get("ports")
    }
    assert {target for _, target in published.pop("proxy")} == {80, 443}
    for name in ("prometheus", "grafana"):  # loopback of the host only
        assert all(host == "127.0.0.1" for host, _ in published.pop(name)), name
    assert published == {}  # gunicorn, the databases, the broker and the agents: not at all
    assert services["web"]["environment"]["DJANGO_BEHIND_TLS_PROXY"] == "1"
    proxy_config = (REPO_ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in proxy_config
    assert "/metrics" in proxy_config


def test_agents_serve_every_class_and_app_points_at_real_services(tmp_path: Path) -> None:
    services = compose_config(tmp_path)["services"]
    # Work-conserving by default: every agent serves every class, short first.
    assert services["agent"]["command"][-2:] == ["--classes", "short,medium,long"]
    assert services["agent"]["deploy"]["replicas"] == 2
    environment = services["consumer"]["environment"]
    assert environment["PULSAR_URL"].startswith("pulsar://pulsar:")
    assert environment["PULSAR_AUTH_TOKEN"].count(".") == 2  # a JWT
    assert environment["DATABASE_URL"].startswith("postgres://")
    redis_url = urlsplit(environment["REDIS_URL"])
    assert redis_url.hostname == "redis" and redis_url.password  # Redis requires its password
    assert "allkeys-lru" in services["redis"]["command"]
    assert "--requirepass" in services["redis"]["command"]
    assert services["pulsar"]["environment"]["PULSAR_PREFIX_authenticationEnabled"] == "true"
