"""The one application error type; `gateway.apis.exception_handler` maps it to JSON 4xx."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request the service refuses: bad input, an illegal state change, a missing object.

    `code` is a stable machine-readable slug, `field` names the offending input (dotted path,
    e.g. ``params.length_scale`` or ``jobs[2].text``) and `status` the HTTP status to answer.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        field: str | None = None,
        status: int = 400,
        extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.status = status
        self.extra = extra or {}


class IllegalTransitionError(ApplicationError):
    """A status change the job's state machine forbids (409)."""

    def __init__(self, message: str, *, current: str, target: str) -> None:
        super().__init__(message, code="illegal_transition", field="status", status=409, extra={"status": current})
        self.current = current
        self.target = target
