"""Request id: taken from X-Request-ID (the gateway stamps one) or made here, echoed back, and logged."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from common.correlation import caused_by

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
