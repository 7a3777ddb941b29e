"""One way to open a Pulsar client, with the client's C++ logs routed to Python logging."""

from __future__ import annotations

import logging

import pulsar


def pulsar_logger() -> logging.Logger:
    """The logger handed to `pulsar.Client(logger=...)`: its C++ logs at WARNING and above."""
    logger = logging.getLogger("pulsar")
    logger.setLevel(logging.WARNING)
    return logger


def pulsar_client(service_url: str, *, timeout_s: float = 10.0) -> pulsar.Client:
    """A client whose operations and connection attempts give up after `timeout_s`."""
    return pulsar.Client(
        service_url,
        logger=pulsar_logger(),
        operation_timeout_seconds=max(1, int(timeout_s)),
        connection_timeout_ms=int(timeout_s * 1000),
    )
