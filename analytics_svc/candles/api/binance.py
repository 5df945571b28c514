"""Binance's wire conventions for the /api/v3/ endpoints: error codes and bodies, decimals, kline rows."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from candles.intervals import INTERVALS, datetime_to_ms
from candles.models import Candle
from common.exceptions import ApplicationError
from common.exceptions import exception_handler as platform_exception_handler

SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
EIGHT_PLACES = Decimal("1e-8")

# Binance's codes (https://developers.binance.com/docs/binance-spot-api-docs/errors).
ILLEGAL_CHARS = -1100
TOO_MANY_PARAMETERS = -1101
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
INVALID_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_PARAMETER = -1130
START_TIME_GREATER_THAN_END_TIME = -1023


class BinanceError(ApplicationError):
    """A request the exchange would refuse: rendered as Binance does, {"code": -1121, "msg": "Invalid symbol."}."""

    code = "binance_error"

    def __init__(self, binance_code: int, msg: str):
        super().__init__(msg, details={"binance_code": binance_code})
        self.binance_code = binance_code


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BinanceError):
        return Response({"code": exc.binance_code, "msg": exc.message}, status=exc.status_code)
    response = platform_exception_handler(exc, context) or drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "message" in response.data:
        response.data = {"code": -1000, "msg": response.data["message"]}  # -1000: Binance's UNKNOWN
    return response


def binance_decimal(value: Decimal) -> str:
    """Eight decimals as the exchange prints them ("0.00141342", "1482.00000000"), more only if needed."""
    quantized = value.quantize(EIGHT_PLACES)
    return format(quantized if quantized == value else value.normalize(), "f")


def parse_symbol(raw: str | None) -> str:
    if raw is None or raw == "":
        raise BinanceError(
            MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        )
    if not SYMBOL_RE.match(raw):
        raise BinanceError(
            ILLEGAL_CHARS, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
        )
    return raw


def parse_interval(raw: str | None) -> str:
    if raw is None or raw == "":
        raise BinanceError(
            MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        )
    if raw not in INTERVALS:
        raise BinanceError(INVALID_INTERVAL, f"Invalid interval. Supported: {', '.join(INTERVALS)}.")
    return raw


LONG_MAX = 2**63 - 1  # Binance's integer parameters are Java longs


def parse_int(raw: str | None, name: str, *, minimum: int = 0, maximum: int | None = LONG_MAX) -> int | None:
    if raw is None or raw == "":
        return None
    # ASCII digits only: int() also takes " 12", "1_2" and other scripts' digits, no client means those.
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 20:
        raise BinanceError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BinanceError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid: must be {bounds}.")
    return value


def kline_row(candle: Candle) -> list[Any]:
    """The exchange's 12 fields: times in ms, decimals as strings, and the ignored last field "0"."""
    return [
        datetime_to_ms(candle.open_time),
        binance_decimal(candle.open),
        binance_decimal(candle.high),
        binance_decimal(candle.low),
        binance_decimal(candle.close),
        binance_decimal(candle.volume),
        datetime_to_ms(candle.close_time),
        binance_decimal(candle.quote_volume),
        candle.trades,
        binance_decimal(candle.taker_buy_volume),
        binance_decimal(candle.taker_buy_quote_volume),
        "0",
    ]
