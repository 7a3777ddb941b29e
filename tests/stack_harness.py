"""The whole service as separate processes against real Postgres, Redis and pulsar-lite.

`build_stack` prepares what `make run` starts (devstack.Stack), pointed at a fresh Postgres
database and a Redis database of its own. The session fixture `running_stack` lives in
tests/conftest.py so that every test package shares one stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.broker import free_port
from devstack.client import ApiClient
from devstack.postgres import recreate_database
from devstack.stack import Stack, StackConfig

E2E_DATABASE = os.environ.get("TEST_E2E_DATABASE", "tts_e2e")
E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")


@dataclass
class RunningStack:
    stack: Stack
    api: ApiClient

    @property
    def gateway_url(self) -> str:
        return self.stack.gateway_url

    @property
    def consumer_metrics_url(self) -> str:
        return self.stack.consumer_metrics_url

    @property
    def agent_metrics_urls(self) -> list[str]:
        return self.stack.agent_metrics_urls

    @property
    def api_token(self) -> str:
        return self.stack.api_token

    def submit_and_wait(self, text: str, **fields: object) -> dict:
        return self.api.submit_and_wait(text, **fields)


def build_stack(var_dir: Path, **extra_env: str) -> Stack:
    redis.Redis.from_url(E2E_REDIS_URL).flushdb()
    env = {
        "DATABASE_URL": recreate_database(E2E_DATABASE),
        "REDIS_URL": E2E_REDIS_URL,
        "TTS_AGENT_THREADS": "1",
        # The tests wait 90-180 s for a job: an event the broker lost is recovered well in time.
        "TTS_STALLED_JOB_AFTER_S": "15",
        **extra_env,
    }
    return Stack(
        StackConfig(
            var_dir=var_dir,
            web_port=free_port(),
            consumer_metrics_port=free_port(),
            web_workers=2,
            extra_env=env,
        )
    )
