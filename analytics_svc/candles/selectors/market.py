"""Reads of the market's recent activity: the kept trades, the 5 minute average price, 24 hour rolling statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet, Sum

from candles.intervals import MINUTE_MS, ms_to_datetime
from candles.models import MarketTrade, SymbolCursor

AVG_PRICE_MINUTES = 5
DAY = timedelta(days=1)


def trade_list(*, symbol: str, limit: int) -> list[MarketTrade]:
    """The `limit` latest trades, oldest first."""
    return list(reversed(MarketTrade.objects.filter(symbol=symbol).order_by("-trade_id")[:limit]))


def trade_range_list(
    *, symbol: str, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
) -> list[MarketTrade]:
    """Trades from an id, or in [start, end] (oldest first from the start; else the latest up to the end)."""
    qs: QuerySet[MarketTrade] = MarketTrade.objects.filter(symbol=symbol)
    if from_id is not None:
        qs = qs.filter(trade_id__gte=from_id)
    if start_ms is not None:
        qs = qs.filter(traded_at__gte=ms_to_datetime(start_ms))
    if end_ms is not None:
        qs = qs.filter(traded_at__lte=ms_to_datetime(end_ms))
    if from_id is not None or start_ms is not None:
        return list(qs.order_by("trade_id")[:limit])
    return list(reversed(qs.order_by("-trade_id")[:limit]))


@dataclass(frozen=True, slots=True)
class AveragePrice:
    price: Decimal
    close_time: datetime


def average_price_get(*, symbol: str, now: datetime) -> AveragePrice | None:
    """The volume-weighted price of the last 5 minutes' trades; with none, the last price (Binance's rule for a
    quiet market). None when the symbol never traded."""
    cursor = SymbolCursor.objects.filter(symbol=symbol, last_price__isnull=False).first()
    if cursor is None:
        return None
    window = MarketTrade.objects.filter(symbol=symbol, traded_at__gt=now - timedelta(minutes=AVG_PRICE_MINUTES))
    sums = window.aggregate(quote=Sum("quote_qty"), base=Sum("qty"))
    if sums["base"]:
        return AveragePrice(sums["quote"] / sums["base"], cursor.last_trade_time)
    return AveragePrice(cursor.last_price, cursor.last_trade_time)


@dataclass(frozen=True, slots=True)
class DayStats:
    """A symbol's 24 hour rolling window: the 1m candles of the last 1440 minutes (as Binance's rolling tickers,
    the window is whole minutes, at most 59,999 ms longer than asked) and the first kept trade in it."""

    symbol: str
    last_price: Decimal
    last_qty: Decimal | None
    open: Decimal | None  # None: no trade in the window
    high: Decimal | None
    low: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    trades: int
    prev_close: Decimal | None
    first_id: int | None
    last_id: int | None


def day_stats_list(*, symbols: list[str] | None, now: datetime) -> list[DayStats]:
    """The window's figures of every symbol that has a price (or of these), in one query."""
    now_ms = int(now.timestamp() * 1000)
    window_open = ms_to_datetime((now_ms - int(DAY.total_seconds() * 1000)) // MINUTE_MS * MINUTE_MS)
    sql = (
        "SELECT s.symbol, s.last_price, lt.qty, w.o, w.h, w.l, coalesce(w.v, 0), coalesce(w.qv, 0), "
        "coalesce(w.n, 0), p.close, ft.trade_id, CASE WHEN w.n > 0 THEN lt.trade_id END "
        "FROM candle_symbol_cursors s "
        "LEFT JOIN LATERAL (SELECT (array_agg(c.open ORDER BY c.open_time))[1] AS o, max(c.high) AS h, "
        "min(c.low) AS l, sum(c.volume) AS v, sum(c.quote_volume) AS qv, sum(c.trades) AS n FROM ohlcv_1m c "
        "WHERE c.symbol = s.symbol AND c.open_time >= %(open)s AND c.open_time <= %(now)s) w ON true "
        "LEFT JOIN LATERAL (SELECT c.close FROM ohlcv_1m c WHERE c.symbol = s.symbol AND c.open_time < %(open)s "
        "ORDER BY c.open_time DESC LIMIT 1) p ON true "
        "LEFT JOIN LATERAL (SELECT t.trade_id FROM market_trades t WHERE t.symbol = s.symbol "
        "AND t.traded_at >= %(open)s AND t.traded_at <= %(now)s ORDER BY t.traded_at, t.trade_id LIMIT 1) ft ON true "
        "LEFT JOIN LATERAL (SELECT t.trade_id, t.qty FROM market_trades t WHERE t.symbol = s.symbol "
        "ORDER BY t.trade_id DESC LIMIT 1) lt ON true "
        "WHERE s.last_price IS NOT NULL AND (%(symbols)s::text[] IS NULL OR s.symbol = ANY(%(symbols)s::text[])) "
        "ORDER BY s.symbol"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"open": window_open, "now": now, "symbols": symbols})
        rows = cursor.fetchall()
    return [DayStats(*row[:8], int(row[8]), *row[9:]) for row in rows]
