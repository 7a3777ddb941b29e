"""Agent configuration, read once from the environment (see docs/CONTRACTS.md)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .protocol import LENGTH_CLASSES

FIFO_QUEUE = "fifo"


class ConfigError(ValueError):
    """The command line or environment names something the agent cannot run with."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from error


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from error


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def parse_classes(text: str) -> tuple[str, ...]:
    """`"long,short"` -> `("short", "long")`: always served in priority order, short first."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - set(LENGTH_CLASSES)
    if unknown or not names:
        raise ConfigError(f"--classes must be a comma list of {', '.join(LENGTH_CLASSES)}; got {text!r}")
    return tuple(name for name in LENGTH_CLASSES if name in names)


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    classes: tuple[str, ...]
    pulsar_url: str = "pulsar://127.0.0.1:6650"
    pulsar_auth_token: str | None = None  # JWT for a broker with token authentication
    tenant: str = "public"
    namespace: str = "default"
    topic_prefix: str = "tts"
    scheduling: str = "priority"
    max_attempts: int = 3
    job_time_limit_s: float = 900.0
    shutdown_grace_s: float = 20.0
    default_voice: str = "en_US-joe-medium"
    redis_url: str | None = None
    cache_enabled: bool = True
    cache_ttl_s: int = 604800
    cache_dir: Path = Path("var/agent-cache")
    cache_max_bytes: int = 1 << 30
    metrics_port: int = 9200
    torch_threads: int = 1
    # Retry backoff for a failed synthesis: base * 2**redelivery_count, capped.
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 60.0

    @property
    def queues(self) -> tuple[str, ...]:
        """The job queues this agent consumes, in priority order (`fifo` mode: the single queue)."""
        return (FIFO_QUEUE,) if self.scheduling == "fifo" else self.classes

    def topic(self, name: str) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.topic_prefix}-{name}"

    def job_topic(self, queue: str) -> str:
        return self.topic(f"jobs-{queue}")

    def dead_letter_topic(self, queue: str) -> str:
        return self.topic(f"jobs-{queue}-dlq")

    @property
    def events_topic(self) -> str:
        return self.topic("events")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        classes: Sequence[str] | str = LENGTH_CLASSES,
        agent_id: str | None = None,
        metrics_port: int | None = None,
    ) -> AgentConfig:
        env = os.environ if env is None else env
        served = parse_classes(classes) if isinstance(classes, str) else parse_classes(",".join(classes))
        scheduling = env.get("TTS_SCHEDULING", "priority").strip() or "priority"
        if scheduling not in ("priority", "fifo"):
            raise ConfigError(f"TTS_SCHEDULING must be priority or fifo, got {scheduling!r}")
        max_attempts = _int(env, "TTS_MAX_ATTEMPTS", 3)
        if max_attempts < 1:
            raise ConfigError("TTS_MAX_ATTEMPTS must be at least 1")
        return cls(
            agent_id=agent_id or f"{socket.gethostname()}-{os.getpid()}",
            classes=served,
            pulsar_url=env.get("PULSAR_URL", "").strip() or "pulsar://127.0.0.1:6650",
            pulsar_auth_token=env.get("PULSAR_AUTH_TOKEN", "").strip() or None,
            tenant=env.get("PULSAR_TENANT", "").strip() or "public",
            namespace=env.get("PULSAR_NAMESPACE", "").strip() or "default",
            topic_prefix=env.get("TTS_TOPIC_PREFIX", "").strip() or "tts",
            scheduling=scheduling,
            max_attempts=max_attempts,
            job_time_limit_s=_float(env, "TTS_JOB_TIME_LIMIT_S", 900.0),
            shutdown_grace_s=_float(env, "TTS_SHUTDOWN_GRACE_S", 20.0),
            default_voice=env.get("TTS_DEFAULT_VOICE", "").strip() or "en_US-joe-medium",
            redis_url=env.get("REDIS_URL", "").strip() or None,
            cache_enabled=_bool(env, "TTS_CACHE_ENABLED", True),
            cache_ttl_s=_int(env, "TTS_CACHE_TTL_S", 604800),
            cache_dir=Path(env.get("TTS_AGENT_CACHE_DIR", "").strip() or "var/agent-cache"),
            cache_max_bytes=_int(env, "TTS_AGENT_CACHE_MAX_BYTES", 1 << 30),
            metrics_port=metrics_port if metrics_port is not None else _int(env, "TTS_AGENT_METRICS_PORT", 9200),
            torch_threads=max(1, _int(env, "TTS_AGENT_THREADS", 1)),
        )
