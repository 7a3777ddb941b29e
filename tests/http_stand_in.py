"""A stand-in HTTP server served from a thread, for tests of the project's HTTP clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import HTTPServer
from typing import TypeVar

Server = TypeVar("Server", bound=HTTPServer)


def serving(server: Server) -> Iterator[Server]:
    """Serve `server` in a daemon thread while the caller (a pytest fixture) yields it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"
