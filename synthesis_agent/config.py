"""Agent configuration: one frozen dataclass, each default written once, read from the
environment only by `from_env` (called by `__main__`). See docs/CONTRACTS.md."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tts_contracts import (
    DEDICATED_VOICES_SETTING,
    FIFO_QUEUE,
    LENGTH_CLASSES,
    ContractError,
    Topics,
    defaults,
    parse_dedicated_voices,
)

from .background import MAX_NICE
from .outcomes import DEFAULT_CHUNK_SECONDS, DEFAULT_PREVIEW_MIN_SECONDS

# vits.model.engine.ROW_ENGINES and "auto", named here so that reading the configuration does not import torch.
ROW_ENGINE_CHOICES = ("auto", "mkl", "onednn")
CONV_ENGINE_CHOICES = ("auto", "onednn", "winograd")


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


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def parse_classes(text: str) -> tuple[str, ...]:
    """`"long,short"` -> `("short", "long")`: always served in priority order, short first."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - set(LENGTH_CLASSES)
    if unknown or not names:
        raise ConfigError(f"--classes must be a comma list of {', '.join(LENGTH_CLASSES)}; got {text!r}")
    return tuple(name for name in LENGTH_CLASSES if name in names)


def pool_voice_from(env: Mapping[str, str], option: str | None) -> str | None:
    """The voice of a voice pool's agent (`--voice`, else TTS_AGENT_VOICE), or None for a shared agent.

    It must be in TTS_DEDICATED_VOICES: the gateway publishes only those voices to per-voice
    topics, so an agent on any other voice's topics would never get a job.
    """
    voice = (option or "").strip() or env.get("TTS_AGENT_VOICE", "").strip()
    try:
        dedicated = parse_dedicated_voices(env.get(DEDICATED_VOICES_SETTING, ""))
    except ContractError as error:
        raise ConfigError(str(error)) from error
    if voice and voice not in dedicated:
        raise ConfigError(
            f"--voice / TTS_AGENT_VOICE is {voice!r}, which is not in {DEDICATED_VOICES_SETTING} "
            f"({', '.join(sorted(dedicated)) or 'empty'}): the gateway sends no job to its topics"
        )
    return voice or None


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    classes: tuple[str, ...]
    pulsar_url: str = defaults.PULSAR_URL
    pulsar_auth_token: str | None = None  # JWT for a broker with token authentication
    tenant: str = defaults.PULSAR_TENANT
    namespace: str = defaults.PULSAR_NAMESPACE
    topic_prefix: str = defaults.TOPIC_PREFIX
    scheduling: str = "priority"
    max_attempts: int = defaults.MAX_ATTEMPTS
    dead_letter_after_deliveries: int = defaults.DEAD_LETTER_AFTER_DELIVERIES
    # Embedded broker only (devstack sets it): spread consumer ids over this many values (connection.py).
    consumer_id_spread: int = 0
    # Working time a job may take: this base plus `job_time_limit_rtf` seconds per second of its
    # estimated audio, so the largest accepted text gets a limit it can meet (pipeline.time_limit_s).
    job_time_limit_s: float = 900.0
    job_time_limit_rtf: float = 1.0
    shutdown_grace_s: float = 20.0
    # Every job the agent holds (running or paused) gets a heartbeat event and a renewed claim
    # this often; a claim expires after `claim_ttl_intervals` missed heartbeats.
    heartbeat_interval_s: float = 10.0
    claim_ttl_intervals: float = 3.0
    default_voice: str = defaults.DEFAULT_VOICE
    # A voice pool's agent (`--voice`): consumes only that voice's topics and preloads it.
    # None: the shared topics, every voice not in TTS_DEDICATED_VOICES.
    voice: str | None = None
    redis_url: str | None = None
    cache_enabled: bool = True
    cache_ttl_s: int = 604800
    cache_dir: Path = Path("var/agent-cache")
    cache_max_bytes: int = 1 << 30
    metrics_port: int = 9200
    torch_threads: int = 1
    voices_dir: Path | None = None
    vits_compile: bool = False
    # Library of vits' row products: "auto" picks by the CPU's kind (vits/model/engine.py);
    # a fleet on mixed CPUs can pin one so every agent computes the same samples.
    vits_row_engine: str = "auto"
    vits_conv_engine: str = "auto"
    # Torch device of the voices ("cpu", "cuda", "cuda:1"): Voice.load(device=...) checks it.
    device: str = "cpu"
    # Seconds of audio synthesized per step: the agent looks for more urgent work this often.
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    # A first sentence of at least this much estimated audio is previewed by its first chunks
    # (a `preview` event: streams start playing before the sentence is done); 0: never.
    preview_min_seconds: float = DEFAULT_PREVIEW_MIN_SECONDS
    # Nice value of the thread computing the steps of every class below the agent's top one, so
    # a short job admitted mid-chunk gets the CPU at once (background.py); 0 runs them inline.
    background_nice: int = 19
    # Synthesize one sentence before subscribing, so the first job does not pay start-up (warmup.py).
    warm_up: bool = True
    # Retry backoff for a failed synthesis: base * 2**redelivery_count, capped.
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 60.0

    @property
    def topics(self) -> Topics:
        return Topics(tenant=self.tenant, namespace=self.namespace, prefix=self.topic_prefix)

    @property
    def queues(self) -> tuple[str, ...]:
        """The job queues this agent consumes, in priority order (`fifo` mode: the single queue)."""
        return (FIFO_QUEUE,) if self.scheduling == "fifo" else self.classes

    def job_topic(self, queue: str) -> str:
        """The topic this agent consumes for `queue`: its voice's own, or the shared one."""
        return self.topics.job_topic(queue, self.voice)

    @property
    def preload_voice(self) -> str:
        """The voice loaded before taking jobs: the pool's voice, else the default one."""
        return self.voice or self.default_voice

    @property
    def claim_ttl_s(self) -> float:
        return self.heartbeat_interval_s * self.claim_ttl_intervals

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        classes: Sequence[str] | str = LENGTH_CLASSES,
        agent_id: str | None = None,
        metrics_port: int | None = None,
        device: str | None = None,
        voice: str | None = None,
    ) -> AgentConfig:
        env = os.environ if env is None else env
        default: dict[str, Any] = {item.name: item.default for item in fields(cls)}
        served = parse_classes(classes) if isinstance(classes, str) else parse_classes(",".join(classes))
        scheduling = _str(env, "TTS_SCHEDULING", default["scheduling"])
        if scheduling not in ("priority", "fifo"):
            raise ConfigError(f"TTS_SCHEDULING must be priority or fifo, got {scheduling!r}")
        max_attempts = _int(env, "TTS_MAX_ATTEMPTS", default["max_attempts"])
        if max_attempts < 1:
            raise ConfigError("TTS_MAX_ATTEMPTS must be at least 1")
        dead_letter_after = _int(env, "TTS_DEAD_LETTER_AFTER_DELIVERIES", default["dead_letter_after_deliveries"])
        if dead_letter_after < max_attempts:
            raise ConfigError("TTS_DEAD_LETTER_AFTER_DELIVERIES must be at least TTS_MAX_ATTEMPTS")
        heartbeat_interval_s = _float(env, "TTS_HEARTBEAT_INTERVAL_S", default["heartbeat_interval_s"])
        if heartbeat_interval_s <= 0:
            raise ConfigError("TTS_HEARTBEAT_INTERVAL_S must be positive")
        chunk_seconds = _float(env, "TTS_CHUNK_SECONDS", default["chunk_seconds"])
        if chunk_seconds < 0:
            raise ConfigError("TTS_CHUNK_SECONDS must be 0 (whole sentences) or positive")
        preview_min_seconds = _float(env, "TTS_PREVIEW_MIN_SECONDS", default["preview_min_seconds"])
        if preview_min_seconds < 0:
            raise ConfigError("TTS_PREVIEW_MIN_SECONDS must be 0 (no previews) or positive")
        device = (device or "").strip() or _str(env, "TTS_DEVICE", default["device"])
        row_engine = _str(env, "TTS_VITS_ROW_ENGINE", default["vits_row_engine"]).lower()
        if row_engine not in ROW_ENGINE_CHOICES:
            raise ConfigError(f"TTS_VITS_ROW_ENGINE must be one of {', '.join(ROW_ENGINE_CHOICES)}, got {row_engine!r}")
        conv_engine = _str(env, "TTS_VITS_CONV_ENGINE", default["vits_conv_engine"]).lower()
        if conv_engine not in CONV_ENGINE_CHOICES:
            choices = ", ".join(CONV_ENGINE_CHOICES)
            raise ConfigError(f"TTS_VITS_CONV_ENGINE must be one of {choices}, got {conv_engine!r}")
        background_nice = _int(env, "TTS_AGENT_BACKGROUND_NICE", default["background_nice"])
        if not 0 <= background_nice <= MAX_NICE:
            raise ConfigError(f"TTS_AGENT_BACKGROUND_NICE must be 0 (off) to {MAX_NICE}, got {background_nice}")
        pool_voice = pool_voice_from(env, voice)
        return cls(
            agent_id=agent_id or f"{socket.gethostname()}-{os.getpid()}",
            classes=served,
            pulsar_url=_str(env, "PULSAR_URL", default["pulsar_url"]),
            pulsar_auth_token=env.get("PULSAR_AUTH_TOKEN", "").strip() or None,
            tenant=_str(env, "PULSAR_TENANT", default["tenant"]),
            namespace=_str(env, "PULSAR_NAMESPACE", default["namespace"]),
            topic_prefix=_str(env, "TTS_TOPIC_PREFIX", default["topic_prefix"]),
            scheduling=scheduling,
            max_attempts=max_attempts,
            dead_letter_after_deliveries=dead_letter_after,
            consumer_id_spread=max(0, _int(env, "TTS_PULSAR_CONSUMER_ID_SPREAD", default["consumer_id_spread"])),
            job_time_limit_s=_float(env, "TTS_JOB_TIME_LIMIT_S", default["job_time_limit_s"]),
            job_time_limit_rtf=_float(env, "TTS_JOB_TIME_LIMIT_RTF", default["job_time_limit_rtf"]),
            shutdown_grace_s=_float(env, "TTS_SHUTDOWN_GRACE_S", default["shutdown_grace_s"]),
            heartbeat_interval_s=heartbeat_interval_s,
            default_voice=_str(env, "TTS_DEFAULT_VOICE", default["default_voice"]),
            voice=pool_voice,
            redis_url=env.get("REDIS_URL", "").strip() or None,
            cache_enabled=_bool(env, "TTS_CACHE_ENABLED", default["cache_enabled"]),
            cache_ttl_s=_int(env, "TTS_CACHE_TTL_S", default["cache_ttl_s"]),
            cache_dir=Path(_str(env, "TTS_AGENT_CACHE_DIR", str(default["cache_dir"]))),
            cache_max_bytes=_int(env, "TTS_AGENT_CACHE_MAX_BYTES", default["cache_max_bytes"]),
            metrics_port=metrics_port
            if metrics_port is not None
            else _int(env, "TTS_AGENT_METRICS_PORT", default["metrics_port"]),
            torch_threads=max(1, _int(env, "TTS_AGENT_THREADS", default["torch_threads"])),
            voices_dir=Path(env["TTS_VOICES_DIR"].strip()) if env.get("TTS_VOICES_DIR", "").strip() else None,
            vits_compile=_bool(env, "TTS_VITS_COMPILE", default["vits_compile"]),
            vits_row_engine=row_engine,
            vits_conv_engine=conv_engine,
            device=device,
            chunk_seconds=chunk_seconds,
            preview_min_seconds=preview_min_seconds,
            background_nice=background_nice,
            warm_up=_bool(env, "TTS_AGENT_WARM_UP", default["warm_up"]),
        )
