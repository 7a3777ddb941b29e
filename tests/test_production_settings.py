"""The production settings pass `check --deploy` at WARNING level with the compose environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_docker_compose import REPO_ROOT, compose_config


def _check_deploy(environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "TTS_VAR_DIR": str(tmp_path / "var"),
        **environment,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def web_environment(tmp_path: Path) -> dict[str, str]:
    environment = {key: str(value) for key, value in compose_config(tmp_path)["services"]["web"]["environment"].items()}
    environment.pop("PROMETHEUS_MULTIPROC_DIR")  # a tmpfs of the container
    assert environment["DJANGO_SETTINGS_MODULE"] == "tts_project.settings.production"
    return environment


def test_check_deploy_passes_with_the_compose_environment(web_environment: dict[str, str], tmp_path: Path) -> None:
    result = _check_deploy(web_environment, tmp_path)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"DJANGO_HSTS_SECONDS": "0"}, "security.W004"),
        ({"DJANGO_SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"DJANGO_SECRET_KEY": "short"}, "security.W009"),
    ],
)
def test_check_deploy_fails_when_weakened(
    web_environment: dict[str, str], tmp_path: Path, change: dict[str, str], warning: str
) -> None:
    result = _check_deploy({**web_environment, **change}, tmp_path)
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(web_environment: dict[str, str], tmp_path: Path) -> None:
    environment = {key: value for key, value in web_environment.items() if key != "DJANGO_SECRET_KEY"}
    result = _check_deploy(environment, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_proxy_ssl_header_is_trusted_only_behind_the_proxy(web_environment: dict[str, str], tmp_path: Path) -> None:
    probe = "from django.conf import settings; print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    for behind, expected in (("1", "('HTTP_X_FORWARDED_PROTO', 'https')"), ("0", "None")):
        env = {
            "PATH": os.environ["PATH"],
            "TTS_VAR_DIR": str(tmp_path / "var"),
            **web_environment,
            "DJANGO_BEHIND_TLS_PROXY": behind,
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", probe],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.stdout.strip().splitlines()[-1] == expected, result.stderr
