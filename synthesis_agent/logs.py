"""Logging with job context: every record says which agent, job, attempt and class it is about."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_job: ContextVar[str] = ContextVar("synthesis_agent_job", default="")
_agent: ContextVar[str] = ContextVar("synthesis_agent_id", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [agent=%(agent_id)s%(job_context)s] %(message)s"


class JobContextFilter(logging.Filter):
    """Adds `agent_id` and `job_context` to every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.agent_id = _agent.get()
        record.job_context = _job.get()
        return True


@contextmanager
def job_context(job_id: str | None, attempt: int, length_class: str, delivery: int) -> Iterator[None]:
    token = _job.set(f" job={job_id or '?'} attempt={attempt} delivery={delivery} class={length_class}")
    try:
        yield
    finally:
        _job.reset(token)


def set_agent_id(agent_id: str) -> None:
    _agent.set(agent_id)


def configure_logging(level: str | int = "INFO") -> None:
    """Root handler on stderr with the context format; the Pulsar client only at WARNING."""
    handler = logging.StreamHandler()
    handler.addFilter(JobContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pulsar").setLevel(logging.WARNING)
