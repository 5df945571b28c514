"""One family of business errors and one DRF exception handler, so every error has the same JSON shape.

Shape: {"code": "<machine code>", "message": "<human text>", "details": {...}}.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A business rule said no. Rendered as a 4xx with a code the client can act on."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "application_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away (restart, failover): nothing was written; the client may retry at once, since
        # Django drops the broken connection at the end of this request.
        response = Response(
            error_body("unavailable", "The service's database is unavailable; retry shortly."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "1"
        return response
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, drf_exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", _first_message(details), {"fields": details})
    else:
        code = exc.get_codes() if isinstance(exc, drf_exceptions.APIException) else "error"
        response.data = error_body(code if isinstance(code, str) else "error", _first_message(response.data))
    return response


# --- Django's own error views, in the same shape (a service never answers an HTML error page) -------------------
# Every service's urls.py names these (handler400/403/404/500); they answer what DRF's handler does not see:
# unknown paths, errors raised before a view (middleware), and bugs (the traceback goes to the log only).


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "You do not have permission to perform this action.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", f"no route for {request.path}")


def server_error(request: HttpRequest) -> JsonResponse:
    return _json_error(500, "server_error", "The service failed to answer; the error is logged with the request id.")


def parse_count(raw: str | None, name: str, *, minimum: int = 0, maximum: int) -> int | None:
    """A non-negative integer query parameter in [minimum, maximum]; None when absent or empty.

    ASCII digits only: a superscript two or an Arabic-Indic digit is a digit to str.isdigit (and some to int()),
    not to a client.
    """
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20 or not minimum <= int(raw) <= maximum:
        raise ApplicationError(
            f"{name} must be an integer from {minimum} to {maximum}", code="invalid", details={"parameter": name}
        )
    return int(raw)
