"""Reads of the candles app: klines by symbol and interval, symbols seen, latest prices."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from candles.intervals import ms_to_datetime
from candles.models import CANDLE_MODELS, Candle, SymbolCursor


def kline_list(
    *, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
) -> list[Candle]:
    """Candles with open_time in [start, end], oldest first; without a start, the latest `limit` (Binance's rule)."""
    qs: QuerySet[Candle] = CANDLE_MODELS[interval].objects.filter(symbol=symbol)
    if start_ms is not None:
        qs = qs.filter(open_time__gte=ms_to_datetime(start_ms))
    if end_ms is not None:
        qs = qs.filter(open_time__lte=ms_to_datetime(end_ms))
    if start_ms is not None:
        return list(qs.order_by("open_time")[:limit])
    return list(reversed(qs.order_by("-open_time")[:limit]))


def symbol_exists(*, symbol: str) -> bool:
    """A symbol is known once a trade of it was folded."""
    return SymbolCursor.objects.filter(symbol=symbol).exists()


def symbol_list() -> list[str]:
    return list(SymbolCursor.objects.order_by("symbol").values_list("symbol", flat=True))


def price_list(*, symbol: str | None = None) -> list[SymbolCursor]:
    """The last traded price per symbol (all symbols, or one)."""
    qs = SymbolCursor.objects.filter(last_price__isnull=False).order_by("symbol")
    if symbol is not None:
        qs = qs.filter(symbol=symbol)
    return list(qs)


def latest_trade_time(*, symbol: str) -> datetime | None:
    return SymbolCursor.objects.filter(symbol=symbol).values_list("last_trade_time", flat=True).first()
