"""The one DRF exception handler: every error, a 500 included, answers
`{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .errors import ApplicationError

logger = logging.getLogger(__name__)


def _flatten(detail: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(field path, message, code) of every error in a nested ValidationError detail."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            if key == "non_field_errors":
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            found.extend(_flatten(value, child))
        return found
    if isinstance(detail, list):
        found = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)) and not isinstance(value, exceptions.ErrorDetail):
                # A list of per-item errors (ListSerializer): empty dicts are items that passed.
                found.extend(_flatten(value, f"{path}[{index}]"))
            else:
                found.extend(_flatten(value, path))
        return found
    return [(path, str(detail), getattr(detail, "code", "invalid") or "invalid")]


def _body(*, code: str, message: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


_SERVER_ERROR = _body(
    code="server_error", message="internal error; it was logged, retry later or report it", field=None
)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return Response(
            _body(code="request_too_large", message="the request body is too large", field="body"),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, ApplicationError):
        response = Response(_body(code=exc.code, message=exc.message, field=exc.field, **exc.extra), status=exc.status)
        if "retry_after_s" in exc.extra:  # a quota that frees up at a known time
            response["Retry-After"] = str(exc.extra["retry_after_s"])
        return response
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail) or [("", "invalid input", "invalid")]
        field, message, code = errors[0]
        details = [{"field": f or None, "message": m, "code": c} for f, m, c in errors]
        return Response(
            _body(code=code, message=message, field=field or None, details=details),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable (restart, failover): nothing was stored, a retry will do.
        request = context.get("request")
        logger.warning(
            "database unavailable in %s %s: %s", getattr(request, "method", "?"), getattr(request, "path", "?"), exc
        )
        set_rollback()
        response = Response(
            _body(code="service_unavailable", message="the database is unavailable; retry shortly", field=None),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "2"
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug: logged with its traceback here (Django never sees it), answered as JSON so a
        # client parses every error the same way; the details stay in the log.
        view = context.get("view")
        request = context.get("request")
        logger.exception(
            "internal error in %s %s (%s)",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            type(view).__name__ if view is not None else "?",
            exc_info=exc,
        )
        set_rollback()
        return Response(_SERVER_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail if not isinstance(detail, (dict, list)) else exc.default_detail)
        code = getattr(detail, "code", None) or exc.default_code
        # ParseError (malformed JSON) and UnsupportedMediaType are about the request body.
        about_body = isinstance(exc, (exceptions.ParseError, exceptions.UnsupportedMediaType))
        response.data = _body(code=code, message=message, field="body" if about_body else None)
    return response


def api_server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler (errors outside DRF's views): JSON under /api/, the stock page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(_SERVER_ERROR, status=500)
    return server_error(request)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the same JSON error under /api/, the stock page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            _body(code="not_found", message=f"no such endpoint: {request.path}", field=None), status=404
        )
    return page_not_found(request, exception or Http404())
