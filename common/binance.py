"""Binance's wire conventions for every service that answers under /api/v3/: the {"code", "msg"} error body and
its codes, query parameters read as the exchange reads them, decimals printed as the exchange prints them.

Each /api/v3 path is served by the service that owns its data (infra/routes.toml), so more than one service
speaks this dialect; this module is the one place it is written down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.http import QueryDict
from django.utils import timezone
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from common.exceptions import ApplicationError
from common.exceptions import exception_handler as platform_exception_handler

SYMBOL_PATTERN = r"^[A-Z0-9\-_.]{1,20}$"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
# The exchange's own rule for the symbols=[...] parameter, quoted in its -1100 answer.
SYMBOLS_PATTERN = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
EIGHT_PLACES = Decimal("1e-8")
LONG_MAX = 2**63 - 1  # Binance's integer parameters are Java longs

# Binance's codes (errors.md of binance-spot-api-docs).
UNKNOWN = -1000
DISCONNECTED = -1001
START_TIME_GREATER_THAN_END_TIME = -1023
ILLEGAL_CHARS = -1100
TOO_MANY_PARAMETERS = -1101
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
INVALID_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_SYMBOL_STATUS = -1122
MORE_THAN_XX_HOURS = -1127
OPTIONAL_PARAMS_BAD_COMBO = -1128
INVALID_PARAMETER = -1130
INVALID_TICKER_TYPE = -1139
DUPLICATE_SYMBOLS = -1151

_CODE_RE = re.compile(r"-[0-9]{4}")
_INT_RE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits: int() also takes " 12", "1_2" and other scripts' digits


class BinanceError(ApplicationError):
    """A request the exchange would refuse: rendered as Binance does, {"code": -1121, "msg": "Invalid symbol."}."""

    code = "binance_error"

    def __init__(self, binance_code: int, msg: str, *, status_code: int = 400):
        super().__init__(msg, details={"binance_code": binance_code})
        self.binance_code = binance_code
        self.status_code = status_code


def invalid_symbol() -> BinanceError:
    return BinanceError(BAD_SYMBOL, "Invalid symbol.")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The /api/v3 views' handler: Binance's body for every refusal, with the status the platform gives it."""
    if isinstance(exc, BinanceError):
        return Response({"code": exc.binance_code, "msg": exc.message}, status=exc.status_code)
    if isinstance(exc, ApplicationError) and isinstance(exc.code, str) and _CODE_RE.fullmatch(exc.code):
        # A service's own rule that already carries Binance's code (order_svc's filters: "-1013", "-1121").
        return Response({"code": int(exc.code), "msg": exc.message}, status=exc.status_code)
    response = platform_exception_handler(exc, context) or drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "message" in response.data:
        code = DISCONNECTED if response.status_code == 503 else UNKNOWN
        response.data = {"code": code, "msg": response.data["message"]}
    return response


class BinanceView(APIView):
    """A public /api/v3 endpoint: market data needs no sign-in, as on the exchange; errors in Binance's shape."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_exception_handler(self):
        return exception_handler


# --- SIGNED endpoints -------------------------------------------------------------------------------------------
#
# The gateway checks a SIGNED (or API-key-only) request with user_svc before it reaches the owning service: user_svc
# verifies X-MBX-APIKEY, the HMAC signature, timestamp and recvWindow against the key it alone holds, and answers
# with a short-lived access JWT that nginx forwards as `Authorization: Bearer`. Such a token carries, besides the
# usual claims (sub: the user), the key it was made for and that key's permissions:

API_KEY_CLAIM = "api_key"  # the ApiKey's id
API_KEY_PERMISSIONS_CLAIM = "api_key_permissions"  # ["read"] or ["read", "trade"]
# Checked by the gateway and user_svc, never by a service's own parameter rules.
SECURITY_PARAMS = frozenset({"timestamp", "recvWindow", "signature"})

REJECTED_MBX_KEY = -2015
API_KEY_FORMAT_INVALID = -2014


def rejected_key() -> BinanceError:
    return BinanceError(REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status_code=401)


class _ApiKeyToken(BasePermission):
    """The request came through the gateway's API key check: a valid access token made for an API key."""

    required = "read"

    def has_permission(self, request, view) -> bool:
        claims = request.auth if isinstance(request.auth, dict) else None
        if claims is None or not claims.get(API_KEY_CLAIM):
            # No token at all (the service called around the gateway): the key header was never checked.
            raise BinanceError(API_KEY_FORMAT_INVALID, "API-key format invalid.", status_code=401)
        if self.required not in (claims.get(API_KEY_PERMISSIONS_CLAIM) or ()):
            raise rejected_key()
        return True


class CanRead(_ApiKeyToken):
    required = "read"


class CanTrade(_ApiKeyToken):
    required = "trade"


class SignedView(BinanceView):
    """A SIGNED (or API-key) /api/v3 endpoint: the gateway-made token names the user; the methods in
    `trade_methods` (Binance's TRADE endpoints: placing and cancelling) need a key with the trade permission, as on
    the exchange (-2015 otherwise); the rest (USER_DATA) any live key."""

    trade_methods: frozenset[str] = frozenset()

    def get_authenticators(self):
        from common.auth import JWTAuthentication

        return [JWTAuthentication()]

    def get_permissions(self):
        return [CanTrade() if self.request.method in self.trade_methods else CanRead()]

    def permission_denied(self, request, message=None, code=None):
        raise BinanceError(API_KEY_FORMAT_INVALID, "API-key format invalid.", status_code=401)

    def handle_exception(self, exc):
        from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

        if isinstance(exc, (AuthenticationFailed, NotAuthenticated)):
            exc = rejected_key()  # an expired or forged token: as Binance answers a key it does not accept
        return super().handle_exception(exc)


def signed_params(request) -> dict[str, str]:
    """A SIGNED request's parameters: the query string's and the form body's together (Binance takes either), one
    value each (the same name twice, in one place or across both, is -1101); the security parameters left out."""
    merged: dict[str, str] = {}
    sources = [request.query_params]
    body = getattr(request, "data", None)
    if isinstance(body, QueryDict):
        sources.append(body)
    for source in sources:
        for name in source:
            values = source.getlist(name)
            if len(values) > 1 or name in merged:
                raise BinanceError(TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected.")
            if name not in SECURITY_PARAMS and values[0] != "":
                merged[name] = values[0]
    return merged


def server_time_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


# --- parameters -----------------------------------------------------------------------------------------------


def param(query: QueryDict | Mapping[str, str], name: str) -> str | None:
    """One query parameter; the same name twice is Binance's -1101. Empty means not sent (DRF's and HTML forms'
    convention, which the fuzz suite holds the services to)."""
    values = query.getlist(name) if isinstance(query, QueryDict) else [v for v in [query.get(name)] if v is not None]
    if len(values) > 1:
        raise BinanceError(TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected.")
    return values[0] if values and values[0] != "" else None


def missing(name: str) -> BinanceError:
    return BinanceError(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def parse_symbol(raw: str | None) -> str:
    if raw is None or raw == "":
        raise missing("symbol")
    if not SYMBOL_RE.fullmatch(raw):
        raise BinanceError(
            ILLEGAL_CHARS, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
        )
    return raw


def parse_symbols(raw: str | None) -> list[str] | None:
    """symbols=["BTCUSDT","BNBUSDT"] (a JSON array, URL-encoded or not); None when not sent."""
    if raw is None or raw == "":
        return None
    try:
        symbols = json.loads(raw)
    except (ValueError, RecursionError):
        symbols = None
    if not isinstance(symbols, list) or not all(isinstance(s, str) and SYMBOL_RE.fullmatch(s) for s in symbols):
        raise BinanceError(
            ILLEGAL_CHARS, f"Illegal characters found in parameter 'symbols'; legal range is '{SYMBOLS_PATTERN}'."
        )
    if not symbols:
        raise missing("symbols")
    if len(set(symbols)) != len(symbols):
        raise BinanceError(DUPLICATE_SYMBOLS, "Symbol is present multiple times in the list.")
    return symbols


def parse_symbol_selection(query: QueryDict | Mapping[str, str]) -> tuple[list[str] | None, bool]:
    """The ticker endpoints' `symbol` or `symbols` (never both): (the names, or None for every symbol; whether one
    `symbol` was asked for, which is answered with an object rather than a list)."""
    one, many = param(query, "symbol"), param(query, "symbols")
    if one is not None and many is not None:
        raise BinanceError(OPTIONAL_PARAMS_BAD_COMBO, "Parameter 'symbol' and 'symbols' cannot be used in combination.")
    if one is not None:
        return [parse_symbol(one)], True
    return parse_symbols(many), False


def parse_int(raw: str | None, name: str, *, minimum: int = 0, maximum: int | None = LONG_MAX) -> int | None:
    if raw is None or raw == "":
        return None
    if not _INT_RE.fullmatch(raw):
        raise BinanceError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BinanceError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid: must be {bounds}.")
    return value


def parse_choice(raw: str | None, name: str, choices: tuple[str, ...], *, code: int = INVALID_PARAMETER) -> str | None:
    if raw is None:
        return None
    if raw not in choices:
        raise BinanceError(code, f"Data sent for parameter '{name}' is not valid: one of {', '.join(choices)}.")
    return raw


def parse_time_range(query: QueryDict | Mapping[str, str]) -> tuple[int | None, int | None]:
    start = parse_int(param(query, "startTime"), "startTime")
    end = parse_int(param(query, "endTime"), "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(START_TIME_GREATER_THAN_END_TIME, "Start time is greater than end time.")
    return start, end


# --- numbers --------------------------------------------------------------------------------------------------


def binance_decimal(value: Decimal) -> str:
    """Eight decimals as the exchange prints them ("0.00141342", "1482.00000000"), more only if needed."""
    quantized = value.quantize(EIGHT_PLACES)
    return format(quantized if quantized == value else value.normalize(), "f")


def rounded8(value: Decimal) -> str:
    """A computed figure (an average, a ratio) rounded to the exchange's eight decimals."""
    return format(value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN), "f")


ZERO = "0.00000000"
