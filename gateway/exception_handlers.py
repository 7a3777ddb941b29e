"""The one DRF exception handler: every 4xx answers `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django logs it and answers 500
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail if not isinstance(detail, (dict, list)) else exc.default_detail)
        code = getattr(detail, "code", None) or exc.default_code
        # ParseError (malformed JSON) and UnsupportedMediaType are about the request body.
        about_body = isinstance(exc, (exceptions.ParseError, exceptions.UnsupportedMediaType))
        response.data = _body(code=code, message=message, field="body" if about_body else None)
    return response


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the same JSON error under /api/, the stock page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            _body(code="not_found", message=f"no such endpoint: {request.path}", field=None), status=404
        )
    return page_not_found(request, exception or Http404())
