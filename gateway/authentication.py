"""DRF authentication by API key: `Authorization: Bearer <key>` or `Authorization: Token <key>`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .apikeys import api_key_resolve

_SCHEMES = (b"bearer", b"token")


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Token"  # what WWW-Authenticate names; Bearer is accepted too

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in _SCHEMES:
            return None  # another scheme (or none): not ours, the request stays anonymous
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected '<scheme> <key>'.")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key = api_key_resolve(raw_key=raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        if not key.owner.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the schema states the key: HTTP bearer (the `Token` form is accepted as well)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>` (or `Authorization: Token <key>`).",
        }
