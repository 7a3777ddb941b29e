"""Start, watch and stop every process of the service on one machine.

One `Stack` is the whole service on the embedded defaults: the pulsar-lite broker (unless
PULSAR_URL points elsewhere), migrations, a demo API token, the gateway web process
(gunicorn), the event consumer and synthesis agents. The run command, the end-to-end tests
and the benchmarks all drive this one class, so what is tested is what a newcomer runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tts_contracts import DEDICATED_VOICES_SETTING, parse_dedicated_voices

from .broker import EmbeddedBroker, free_port, wait_for_port

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AgentSpec:
    """One agent process: the length classes it serves, in priority order, and its voice pool (if any)."""

    classes: tuple[str, ...]
    metrics_port: int = 0
    name: str = ""
    voice: str | None = None  # `--voice`: only that dedicated voice's topics

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return "agent-" + "-".join(self.classes) + (f"-{self.voice}" if self.voice else "")


# Work-conserving: every agent serves every class, short first, and a short job preempts a
# longer one between two chunks of audio, so no core idles while work waits. Reserving agents
# for a class (AgentSpec(classes=("short",))) stays possible for operators who want it.
DEFAULT_AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec(classes=("short", "medium", "long"), name="agent-1"),
    AgentSpec(classes=("short", "medium", "long"), name="agent-2"),
)


@dataclass
class StackConfig:
    var_dir: Path = REPO_ROOT / "var"
    web_port: int = 8000
    consumer_metrics_port: int = 9101
    agents: Sequence[AgentSpec] = DEFAULT_AGENTS
    web_workers: int = 2
    web_application: str = "tts_project.asgi:application"  # gunicorn's app spec (bench/web.py compares)
    demo_username: str = "demo"
    demo_password: str = "demo-password"
    extra_env: Mapping[str, str] = field(default_factory=dict)


class Stack:
    """The running service. Use as a context manager, or call start() and stop()."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.var_dir = Path(self.config.var_dir)
        self.log_dir = self.var_dir / "log"
        self.broker: EmbeddedBroker | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._previous_sigterm: signal.Handlers | None = None
        self._launches: dict[str, tuple[list[str], dict[str, str]]] = {}  # name -> (command, env)
        self.api_token = ""
        self.agent_ports: dict[str, int] = {}
        self.agent_names: set[str] = set()
        self.env = self._base_env()

    # --- addresses -------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.web_port}"

    @property
    def consumer_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.consumer_metrics_port}/metrics"

    @property
    def agent_metrics_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/metrics" for port in self.agent_ports.values()]

    # --- lifecycle -------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.config.extra_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # One local user polls as fast as the benchmarks do; production keeps the defaults.
        env.setdefault("TTS_THROTTLE_READ", "100/s")
        env.setdefault("DATABASE_URL", f"sqlite:///{self.var_dir / 'db.sqlite3'}")
        env.setdefault("MEDIA_ROOT", str(self.var_dir / "media"))
        env.setdefault("TTS_AGENT_CACHE_DIR", str(self.var_dir / "agent-cache"))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.var_dir / "prometheus-multiproc")
        env["TTS_CONSUMER_METRICS_PORT"] = str(self.config.consumer_metrics_port)
        return env

    def start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_broker()
            self._manage("migrate", "--noinput")
            self._manage("collectstatic", "--noinput")
            self.api_token = (
                self._manage(
                    "create_api_token", self.config.demo_username, "--staff", "--password", self.config.demo_password
                )
                .strip()
                .splitlines()[-1]
            )
            self._start_web()
            self.start_consumer()
            for agent in (*self.config.agents, *self.voice_pool_agents()):
                self.start_agent(agent)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_broker(self) -> None:
        if self.env.get("PULSAR_URL"):  # set by the caller or the environment: use that broker
            logger.info("using the broker at %s", self.env["PULSAR_URL"])
            return
        self.broker = EmbeddedBroker(self.var_dir / "broker", port=free_port()).start()
        self.env["PULSAR_URL"] = self.broker.url
        # pulsar-lite refuses equal consumer ids across clients: agents spread theirs (connection.py).
        self.env.setdefault("TTS_PULSAR_CONSUMER_ID_SPREAD", "64")

    def _manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self._launches[name] = (list(command), dict(env or self.env))
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        # Its own process group: a terminal's Ctrl-C goes to the whole foreground group, and only
        # the supervisor may get it, so that it stops the children in order (see stop()). Not its
        # own session: with autogroup scheduling (Linux's default) every session is one group of
        # equal weight, so an agent's nice-19 long work in its own session took the CPU from a
        # short job elsewhere as if it were not niced at all (a short synthesis beside two such
        # processes: 172 ms in their own sessions, 114 ms in the supervisor's, 118 ms alone).
        self.processes[name] = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=dict(env or self.env),
            stdin=subprocess.DEVNULL,  # a background group reading the terminal would be stopped
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        log.close()
        logger.info("started %s (pid %s), log %s", name, self.processes[name].pid, self.log_dir / f"{name}.log")

    def _fresh_multiproc_dir(self) -> None:
        """An empty PROMETHEUS_MULTIPROC_DIR: files of a gunicorn that is gone (killed, so its
        workers were never marked dead) would keep counting its workers' live gauges."""
        multiproc_dir = Path(self.env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(multiproc_dir, ignore_errors=True)
        multiproc_dir.mkdir(parents=True)

    def _start_web(self) -> None:
        self._fresh_multiproc_dir()
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                self.config.web_application,
                # ASGI workers: SSE and audio streams are async and never pin a worker thread.
                "--worker-class",
                "uvicorn_worker.UvicornWorker",
                "--bind",
                f"127.0.0.1:{self.config.web_port}",
                "--workers",
                str(self.config.web_workers),
                "--config",
                str(REPO_ROOT / "tts_project" / "gunicorn_conf.py"),
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
        )

    def start_consumer(self) -> None:
        self._spawn("consumer", [sys.executable, "manage.py", "run_event_consumer"])

    def voice_pool_agents(self) -> list[AgentSpec]:
        """One agent serving every class per voice of TTS_DEDICATED_VOICES (none when it is unset):
        the shared agents never read those voices' topics."""
        voices = parse_dedicated_voices(self.env.get(DEDICATED_VOICES_SETTING, ""))
        return [AgentSpec(classes=("short", "medium", "long"), voice=voice) for voice in sorted(voices)]

    def start_agent(self, agent: AgentSpec) -> str:
        port = agent.metrics_port or free_port()
        self.agent_ports[agent.label] = port
        self.agent_names.add(agent.label)
        env = dict(self.env, TTS_AGENT_METRICS_PORT=str(port))
        command = [sys.executable, "-m", "synthesis_agent", "--classes", ",".join(agent.classes)]
        command += ["--agent-id", agent.label, *(["--voice", agent.voice] if agent.voice else [])]
        self._spawn(agent.label, command, env)
        return agent.label

    def wait_ready(self, *, timeout_s: float = 120.0) -> None:
        """Wait for /readyz and every agent's metrics port (agents open it once the voice is loaded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.gateway_url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.gateway_url}/readyz not ready after {timeout_s}s; logs in {self.log_dir}")
            time.sleep(0.3)
        for port in self.agent_ports.values():
            wait_for_port("127.0.0.1", port, timeout_s=max(1.0, deadline - time.monotonic()))

    def exited(self) -> dict[str, int]:
        """Processes that have exited, with their exit codes."""
        return {name: code for name, process in self.processes.items() if (code := process.poll()) is not None}

    def respawn(self, name: str) -> None:
        """Start an exited process again with the command and environment it was started with.

        The event consumer and the agents come back with the embedded broker restarted first:
        pulsar-lite keeps a consumer whose connection was reset (a process killed with unread
        data in its socket) registered until it restarts. The event consumer's successor is then
        refused ("Consumer 0 already exists") or gets nothing while the dead one holds the
        Failover subscription's active slot (tests/devstack/test_embedded_broker_zombie.py). A
        dead agent's consumers stay in the job topics' Shared subscription: seen on `make run`
        after an agent was killed mid-burst, job messages bounced off them (redelivered within
        milliseconds, 30 times in under a second for three jobs, which the dead-letter policy
        then failed as crashed) or sat with them until the watchdog's re-send ten minutes later.
        Apache Pulsar drops such a consumer. The restart costs the others a reconnect: the
        outbox relay, the claims and the watchdog cover what was in flight, as after a broker
        crash (bench/chaos.py).
        """
        command, env = self._launches[name]
        if name == "web":  # as a restarted container starts with an empty metrics volume
            self._fresh_multiproc_dir()
        if (name == "consumer" or name in self.agent_names) and self.broker is not None:
            logger.warning("restarting the embedded broker first (pulsar-lite keeps dead consumers)")
            self.broker.stop()
            self.broker.start()
        self._spawn(name, command, env)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; see {self.log_dir / (name + '.log')}"
                )

    def signal_process(self, name: str, signum: int) -> None:
        self.processes[name].send_signal(signum)

    def stop_process(self, name: str, *, timeout_s: float = 30.0) -> int | None:
        return self.stop_processes([name], timeout_s=timeout_s).get(name)

    def stop_processes(self, names: Sequence[str], *, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM all of `names` at once, then wait for each (SIGKILL after `timeout_s`); exit codes."""
        stopping = []
        for name in names:
            process = self.processes.pop(name, None)
            self.agent_ports.pop(name, None)  # a stopped agent is no longer a metrics target
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            stopping.append((name, process))
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int | None] = {}
        for name, process in stopping:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %ss of SIGTERM; killing it", name, timeout_s)
                process.kill()
                process.wait()
            codes[name] = process.returncode
        return codes

    def stop(self) -> None:
        """Stop in dependency order, each group after the one before has exited: every agent at
        once (they finish or release their jobs and publish their last events while the broker is
        up), then the event consumer (applies those events), the web process, the broker last."""
        self.stop_processes([name for name in self.processes if name in self.agent_names])
        for name in ("consumer", "web"):
            self.stop_processes([name])
        self.stop_processes(list(self.processes))
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Stack:
        self._previous_sigterm = _exit_on_sigterm()
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _exit_on_sigterm() -> signal.Handlers | None:
    """A SIGTERM to a program holding a stack (a benchmark, a test run) unwinds it like Ctrl-C,
    so the `with` block stops the stack's processes instead of leaving them running. Installed
    only over the default handler, from the main thread; returns the handler to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _raise_system_exit)
    return signal.SIG_DFL
