"""`python -m synthesis_agent [--classes C,...] [--voice ID] [--device D] [--agent-id ID] [--metrics-port N]`

Everything else comes from the environment (docs/CONTRACTS.md). Exit code 0 after a graceful
shutdown on SIGTERM or SIGINT, 2 for a bad configuration, 1 if the agent could not start.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from collections.abc import Sequence

# Before anything imports torch: vits sets OpenMP's passive wait, without which a busy
# neighbour process makes multi-threaded synthesis several times slower.
import vits  # noqa: F401
from tts_runtime import exit_without_finalizers, graceful_stop

from . import metrics
from .cache import build_cache
from .claims import Claims, NoClaims, RedisClaims
from .config import AgentConfig, ConfigError
from .logs import configure_logging, set_agent_id
from .voice import VoiceLoader, VoicePool, load_vits_voice
from .warmup import warm_up_voice
from .worker import Agent

logger = logging.getLogger("synthesis_agent")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m synthesis_agent", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--classes",
        default="short,medium,long",
        help="length classes to serve, comma separated; always served short first (default: all)",
    )
    parser.add_argument(
        "--voice",
        default=None,
        help="serve one voice of TTS_DEDICATED_VOICES: only its topics, voice preloaded "
        "(default: TTS_AGENT_VOICE; unset: the shared topics)",
    )
    parser.add_argument("--agent-id", default=None, help="name in events, logs and metrics (default: host-pid)")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="Prometheus port (default: TTS_AGENT_METRICS_PORT; 0 = off)"
    )
    parser.add_argument("--device", default=None, help="torch device of the voices (default: TTS_DEVICE or cpu)")
    parser.add_argument("--log-level", default=os.environ.get("TTS_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def build_claims(config: AgentConfig) -> Claims:
    """Claims in Redis when there is one; without Redis every delivery is worked unclaimed."""
    if not config.redis_url:
        return NoClaims()
    return RedisClaims(config.redis_url, agent_id=config.agent_id, ttl_s=config.claim_ttl_s)


def main(argv: Sequence[str] | None = None, *, voice_loader: VoiceLoader | None = None) -> int:
    """Run one agent until SIGTERM/SIGINT. `voice_loader` is injectable for tests."""
    args = parse_args(argv)
    configure_logging(args.log_level.upper())
    try:
        config = AgentConfig.from_env(
            classes=args.classes,
            agent_id=args.agent_id,
            metrics_port=args.metrics_port,
            device=args.device,
            voice=args.voice,
        )
    except ConfigError as error:
        logger.error("bad configuration: %s", error)
        return 2
    set_agent_id(config.agent_id)

    # Before the slow start-up, so a SIGTERM during model loading is a clean exit too.
    with graceful_stop(what="finishing or releasing the current job") as stop:
        try:
            import torch

            torch.set_num_threads(config.torch_threads)
        except ImportError:  # only fake voices in tests run without torch
            pass
        if voice_loader is None:  # vits reads no environment: hand it what the configuration says
            voice_loader = functools.partial(
                load_vits_voice,
                voices_dir=config.voices_dir,
                compile=config.vits_compile,
                device=config.device,
                threads=config.torch_threads,
                row_engine=config.vits_row_engine,
                conv_engine=config.vits_conv_engine,
            )
        observer = metrics.PrometheusObserver()
        try:
            voices = VoicePool(voice_loader, config.default_voice)
            default = voices.get(config.preload_voice)  # load once, before taking jobs
            if config.warm_up:  # before subscribing: the broker hands a cold agent nothing
                warm_up_voice(default, chunk_seconds=config.chunk_seconds)
            cache = build_cache(config, observer=observer)
            agent = Agent(config, voices=voices, cache=cache, claims=build_claims(config), observer=observer)
            agent.connect()
        except Exception:
            logger.exception("the agent could not start")
            return 1
        observer.on_ready(agent_id=config.agent_id, classes=config.classes, voice=default.info.id)
        metrics.serve(config.metrics_port)  # opened only now: an open port means ready for jobs
        logger.info(
            "agent ready: queues %s%s (%s scheduling), voice %s on %s, %d torch thread(s), %g s chunks, cache %s, "
            "metrics port %s",
            ",".join(config.queues),
            f" of voice {config.voice}" if config.voice else "",
            config.scheduling,
            default.info.id,
            config.device,
            config.torch_threads,
            config.chunk_seconds,
            type(cache).__name__,
            config.metrics_port or "off",
        )
        if stop.is_set():  # stopped while starting: a clean stop too, logged like the others
            agent.close()
        else:
            try:
                agent.run(stop)
            except Exception:
                # Crash-only: closing the client (done by run) hands unacked jobs back to the broker;
                # the orchestrator restarts the process.
                logger.exception("the agent loop failed; its jobs went back to the broker")
                return 1
    logger.info("agent stopped")
    return 0


if __name__ == "__main__":
    exit_without_finalizers(main())
