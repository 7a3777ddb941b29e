"""One way to open a Pulsar client, with the client's C++ logs routed to Python logging."""

from __future__ import annotations

import logging

import pulsar


def pulsar_logger() -> logging.Logger:
    """The logger handed to `pulsar.Client(logger=...)`: its C++ logs at WARNING and above."""
    logger = logging.getLogger("pulsar")
    logger.setLevel(logging.WARNING)
    return logger


def pulsar_authentication(token: str | None) -> pulsar.Authentication | None:
    """Token authentication for `pulsar.Client(authentication=...)`; None when no token is set."""
    return pulsar.AuthenticationToken(token.strip()) if token and token.strip() else None


def pulsar_client(service_url: str, *, timeout_s: float = 10.0, auth_token: str | None = None) -> pulsar.Client:
    """A client whose operations and connection attempts give up after `timeout_s`."""
    return pulsar.Client(
        service_url,
        authentication=pulsar_authentication(auth_token),
        logger=pulsar_logger(),
        operation_timeout_seconds=max(1, int(timeout_s)),
        connection_timeout_ms=int(timeout_s * 1000),
    )
