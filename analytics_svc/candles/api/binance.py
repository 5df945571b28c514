"""The klines side of Binance's wire conventions: intervals, time zones, kline rows (the rest: common.binance)."""

from __future__ import annotations

import re
from typing import Any

from candles.intervals import KLINE_INTERVALS, datetime_to_ms
from common.binance import INVALID_INTERVAL, INVALID_PARAMETER, BinanceError, binance_decimal, missing

# "8", "-1", "+05:45", "-1:00": hours, optionally minutes; Binance takes [-12:00, +14:00].
_TIME_ZONE_RE = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-9]{2}))?")


def parse_interval(raw: str | None) -> str:
    if raw is None or raw == "":
        raise missing("interval")
    if raw not in KLINE_INTERVALS:
        raise BinanceError(INVALID_INTERVAL, "Invalid interval.")
    return raw


def parse_time_zone(raw: str | None) -> int:
    """The klines' timeZone as an offset from UTC in ms (0 when not sent)."""
    if raw is None or raw == "":
        return 0
    match = _TIME_ZONE_RE.fullmatch(raw)
    minutes = None
    if match:
        sign, hours, mins = match[1], int(match[2]), int(match[3] or 0)
        if mins < 60:
            minutes = (-1 if sign == "-" else 1) * (hours * 60 + mins)
    if minutes is None or not -12 * 60 <= minutes <= 14 * 60:
        raise BinanceError(INVALID_PARAMETER, "Data sent for parameter 'timeZone' is not valid.")
    return minutes * 60_000


def kline_row(candle: Any) -> list[Any]:
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
