"""Process plumbing both long-running processes share (the agent, the gateway's consumer and relay):
graceful stop on signals, exit without finalizers, one way to open a Pulsar client, a log line
for failures that repeat while a dependency is down.

Imports neither Django nor the service's parts, so either side may use it.
"""

from .logs import RateLimitedLog
from .process import exit_without_finalizers, graceful_stop
from .pulsar import pulsar_authentication, pulsar_client, pulsar_logger

__all__ = [
    "RateLimitedLog",
    "exit_without_finalizers",
    "graceful_stop",
    "pulsar_authentication",
    "pulsar_client",
    "pulsar_logger",
]
