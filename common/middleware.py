"""Request id (taken from X-Request-ID, which the gateway stamps, or made here; echoed back and logged), and NUL
rejection."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from common.correlation import caused_by
from common.exceptions import error_body
from common.schema import BINANCE_PREFIX

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Events published while handling the request carry its id as their correlation id.
        with caused_by(correlation_id=request_id, request_id=request_id):
            response = self.get_response(request)
        response[self.header] = request_id
        # Which instance answered: the gateway balances over several, and operators and tests want to know.
        response["X-Served-By"] = f"{settings.SERVICE_NAME}@{request.get_host().split(':')[0]}:{request.get_port()}"
        return response


class RejectNulMiddleware:
    """A NUL character anywhere in the path, the query string or a JSON or form body: 400 before any view runs.

    PostgreSQL text cannot hold NUL, so such a value would reach the database driver and fail there as a 500;
    no client has a reason to send one.
    """

    _BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._has_nul(request):
            if request.path.startswith(BINANCE_PREFIX):  # Binance's shape there: -1100 ILLEGAL_CHARS
                return JsonResponse({"code": -1100, "msg": "Illegal characters found in a parameter."}, status=400)
            return JsonResponse(
                error_body("invalid", "The request contains a NUL character, which no field accepts."), status=400
            )
        return self.get_response(request)

    def _has_nul(self, request: HttpRequest) -> bool:
        if "\x00" in request.path or any("\x00" in part for k, vs in request.GET.lists() for part in (k, *vs)):
            return True
        content_type = request.content_type or ""
        if request.method in ("GET", "HEAD", "OPTIONS") or not content_type.startswith(self._BODY_TYPES):
            return False
        body = request.body
        return b"\x00" in body or (content_type == "application/json" and b"\\u0000" in body.lower())
