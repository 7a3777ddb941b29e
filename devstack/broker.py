"""Run the embedded `pulsar-lite` broker as a child process on a chosen port.

`pulsar_lite.start_broker` picks its own port and logs to a fixed file; the stack and the
tests need a known address, their own log and the ability to stop and restart the broker
(outbox and crash tests), so the binary is driven directly.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from pulsar_lite.binary_finder import find_pulsar_lite_binary

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout_s: float = 15.0) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.25):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from error
            time.sleep(0.05)


class EmbeddedBroker:
    """One pulsar-lite process with its storage in `data_dir`; restartable on the same port."""

    def __init__(self, data_dir: Path, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_path = log_path or self.data_dir / "broker.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"pulsar://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self._process = subprocess.Popen(
            [
                find_pulsar_lite_binary(),
                "--addr",
                f"127.0.0.1:{self.port}",
                "--db-path",
                str((self.data_dir / "broker.db").absolute()),
                "--log-level",
                os.environ.get("PULSAR_LITE_LOG_LEVEL", "warn"),
            ],
            stdout=log,
            stderr=log,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C reaches the supervisor only, which stops
            # the broker last, after the agents have released their jobs through it. In its
            # session, like the other children (see Stack._spawn).
            process_group=0,
        )
        log.close()
        try:
            wait_for_port("127.0.0.1", self.port)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"pulsar-lite did not start on port {self.port}; see {self.log_path}") from None
        logger.info("embedded broker listening on %s (pid %s)", self.url, self._process.pid)
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Clean shutdown (SIGTERM), then SIGKILL if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("broker pid %s ignored SIGTERM for %ss; killing it", self._process.pid, timeout_s)
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Crash the broker (SIGKILL), as a failure test wants."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
