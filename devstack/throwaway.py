"""Throwaway PostgreSQL and Redis servers on spare ports, for benchmarks and tests that must stop,
kill or restart them. The machine's own servers are never touched.

PostgreSQL refuses to run as root, so when this process is root the cluster is created and run
as the `postgres` user (`runuser`).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .broker import free_port, wait_for_port

logger = logging.getLogger(__name__)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return path


class ThrowawayPostgres:
    """One `initdb` cluster in a temporary folder, listening on 127.0.0.1:<spare port>, trust auth."""

    def __init__(self, *, port: int | None = None, database: str = "tts") -> None:
        self.port = port or free_port()
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="tts-throwaway-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *command: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else list(command)
        result = subprocess.run(full, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}\n{result.stderr}")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run(
            _postgres_bin("pg_ctl"),
            action,
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            *extra,
        )

    def start(self) -> ThrowawayPostgres:
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
        fresh = not self.data_dir.exists()
        if fresh:
            self._run(_postgres_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
        self._pg_ctl("start", "-o", options)
        if fresh:
            host = ("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
            self._run(_postgres_bin("createdb"), *host, self.database)
        wait_for_port("127.0.0.1", self.port)
        logger.info("throwaway postgres on port %s (%s)", self.port, self.data_dir)
        return self

    def restart(self) -> None:
        """A fast restart: every connection is cut, as in a failover or an upgrade."""
        self._pg_ctl("restart", "-m", "fast")
        wait_for_port("127.0.0.1", self.port)

    def stop_server(self) -> None:
        """An outage: the server stops (every connection cut) and its data stays for start()."""
        self._pg_ctl("stop", "-m", "fast")

    def stop(self) -> None:
        if self.data_dir.exists():
            try:
                self._pg_ctl("stop", "-m", "immediate")
            except RuntimeError as error:
                logger.warning("throwaway postgres did not stop cleanly: %s", error)
        shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayRedis:
    """`redis-server` on a spare loopback port, nothing on disk; stop() and start() again at will."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None
