"""The error envelope: domain errors with stable codes, mapped once to {"code", "message", "extra"}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A refusal the caller can act on. Subclasses fix `code` and `http_status`."""

    code = "invalid"
    http_status = 400
    default_message = "The request is not valid."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)


class Invalid(DomainError):
    code = "invalid"
    http_status = 400


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


def envelope(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


# DRF's own exceptions, by class, to the contract's stable codes.
_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "not_authenticated"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
    (drf.ParseError, "invalid"),
    (drf.ValidationError, "invalid"),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map known errors to the envelope; let anything else propagate to become a logged 500."""
    if isinstance(exc, DomainError):
        return Response(envelope(exc.code, exc.message, exc.extra), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    if not isinstance(exc, drf.APIException):
        return None

    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    status = exc.status_code
    if code == "not_authenticated":
        status = 401
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return Response(
            envelope("invalid", "Some fields are not valid.", {"fields": fields}), status=400, headers=headers
        )
    return Response(envelope(code, str(exc.detail)), status=status, headers=headers)


def not_found(request, exception=None):
    """404 for an unknown URL: the envelope under /api/, Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse(envelope("not_found", "There is nothing at this address."), status=404)
    return page_not_found(request, exception)
