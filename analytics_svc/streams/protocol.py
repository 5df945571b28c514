"""Binance's websocket stream protocol: the paths a client connects to, the requests it may send on a connection
(SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY) and the answers and error objects the
exchange gives (web-socket-streams.md, "Live Subscribing/Unsubscribing to streams")."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_RE = re.compile(r"[A-Za-z0-9]{1,36}")
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

UNKNOWN_PROPERTY, INVALID_VALUE, INVALID_REQUEST, INVALID_JSON = 0, 1, 2, 3
INVALID_STREAM = "Invalid request: invalid stream"
TOO_MANY_STREAMS = "Invalid request: too many streams"
TOO_MANY_PARAMETERS = "Invalid request: too many parameters"


class RequestError(Exception):
    def __init__(self, code: int, msg: str, request_id: Any = None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id

    def answer(self) -> dict[str, Any]:
        return error_answer(self.code, self.msg, self.request_id)


def error_answer(code: int, msg: str, request_id: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def result_answer(result: Any, request_id: Any) -> dict[str, Any]:
    return {"result": result, "id": request_id}


@dataclass(frozen=True)
class Route:
    combined: bool  # /stream: payloads wrapped as {"stream", "data"}
    streams: list[str]  # named in the URL


def route(path: str) -> Route | None:
    """/ws, /ws/<stream>[/<stream>...] (raw), /stream[?streams=<a>/<b>...] (combined); None for any other path."""
    parts = urlsplit(path)
    if parts.path in ("/ws", "/ws/"):
        return Route(False, [])
    if parts.path.startswith("/ws/"):
        return Route(False, [unquote(n) for n in parts.path[len("/ws/") :].split("/") if n])
    if parts.path in ("/stream", "/stream/"):
        values = parse_qs(parts.query).get("streams", [])
        return Route(True, [n for value in values for n in value.split("/") if n])
    return None


@dataclass(frozen=True)
class Request:
    id: Any
    method: str
    params: list[Any]


def parse_request(text: str | bytes) -> Request:
    """A client's message as the exchange reads it; RequestError carries the exchange's answer to a bad one."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid UTF-8"
        raise RequestError(INVALID_JSON, f"Invalid JSON: {reason[:1].lower()}{reason[1:]}{where}") from None
    except RecursionError:
        raise RequestError(INVALID_JSON, "Invalid JSON: recursion limit exceeded") from None
    if not isinstance(doc, dict):
        raise RequestError(INVALID_REQUEST, "Invalid request: expected a JSON object")
    request_id = doc.get("id")
    if not _valid_id(request_id):
        raise RequestError(INVALID_REQUEST, "Invalid request: request ID must be an unsigned integer")
    if "method" not in doc:
        raise RequestError(INVALID_REQUEST, "Invalid request: missing field `method`", request_id)
    method = doc["method"]
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        shown = method if isinstance(method, str) else json.dumps(method)
        raise RequestError(
            INVALID_REQUEST, f"Invalid request: unknown variant `{shown}`, expected one of {expected}", request_id
        )
    params = doc.get("params")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise RequestError(INVALID_REQUEST, "Invalid request: params must be an array", request_id)
    if len(doc) > 3 or any(k not in ("method", "params", "id") for k in doc):
        raise RequestError(INVALID_REQUEST, TOO_MANY_PARAMETERS, request_id)
    return Request(request_id, method, params)


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return LONG_MIN <= value <= LONG_MAX
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def property_name(request: Request, *, arity: int) -> str:
    """SET_PROPERTY's / GET_PROPERTY's property; "combined" is the only one."""
    if len(request.params) > arity:
        raise RequestError(INVALID_REQUEST, TOO_MANY_PARAMETERS, request.id)
    if not request.params or not isinstance(request.params[0], str):
        raise RequestError(INVALID_REQUEST, "Invalid request: property name must be a string", request.id)
    if request.params[0] != "combined":
        raise RequestError(UNKNOWN_PROPERTY, "Unknown property", request.id)
    return request.params[0]


def property_value(request: Request) -> bool:
    if len(request.params) < 2 or not isinstance(request.params[1], bool):
        raise RequestError(INVALID_VALUE, "Invalid value type: expected Boolean", request.id)
    return request.params[1]


class RateLimit:
    """At most `limit` messages in any second (Binance: 5; beyond, it disconnects)."""

    def __init__(self, limit: int, *, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        now = self.clock()
        while self._times and now - self._times[0] >= 1.0:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= self.limit
