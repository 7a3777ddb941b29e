"""The ASGI scope a server sends for a plain HTTP request (GET by default): for tests that call an ASGI app directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def http_scope(
    path: str,
    *,
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    host: str = "127.0.0.1",
    method: str = "GET",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b"host", host.encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": (host, 8000),
    }
