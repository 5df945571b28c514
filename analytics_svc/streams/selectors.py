"""Reads of the streams server, one query each: the stored state a stream starts from before the trades it sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from candles import selectors as candles
from candles.intervals import KLINE_INTERVALS, ms_to_datetime, rollup_source
from django.db import connection

from streams.payloads import Candle, DayWindow


@dataclass(frozen=True, slots=True)
class KlineSeed:
    candle: Candle | None  # None: nothing stored in the window yet
    mark: int  # the last trade id folded into the stored candles (-1: none): later trades are not in the seed


def kline_seed(*, symbol: str, interval: str, open_ms: int, close_ms: int) -> KlineSeed:
    """The stored part of the kline of [open, close], and the trade id it counts up to, in one statement (one
    snapshot: the candles consumer writes candles, kept trades and its mark in one transaction).

    1s comes from the kept trades; the rest from the coarsest stored candles that tile the bucket (1d from 1h).
    The first trade id is the bucket's first kept trade (kept 25 hours: exact up to 1d)."""
    params = {"symbol": symbol, "open": ms_to_datetime(open_ms), "close": ms_to_datetime(close_ms)}
    first = (
        "(SELECT t.trade_id FROM market_trades t WHERE t.symbol = %(symbol)s AND t.traded_at >= %(open)s "
        "AND t.traded_at <= %(close)s ORDER BY t.traded_at, t.trade_id LIMIT 1)"
    )
    mark = "(SELECT m.last_trade_id FROM candle_symbol_cursors m WHERE m.symbol = %(symbol)s)"
    if interval == "1s":
        aggregates = (
            "(array_agg(r.price ORDER BY r.trade_id))[1], max(r.price), min(r.price), "
            "(array_agg(r.price ORDER BY r.trade_id DESC))[1], sum(r.qty), sum(r.quote_qty), count(*), "
            "coalesce(sum(r.qty) FILTER (WHERE NOT r.is_buyer_maker), 0), "
            "coalesce(sum(r.quote_qty) FILTER (WHERE NOT r.is_buyer_maker), 0)"
        )
        source = "market_trades r WHERE r.symbol = %(symbol)s AND r.traded_at >= %(open)s AND r.traded_at <= %(close)s"
    else:
        table = rollup_source(KLINE_INTERVALS[interval], 0).table
        aggregates = (
            "(array_agg(r.open ORDER BY r.open_time))[1], max(r.high), min(r.low), "
            "(array_agg(r.close ORDER BY r.open_time DESC))[1], sum(r.volume), sum(r.quote_volume), "
            "coalesce(sum(r.trades), 0), sum(r.taker_buy_volume), sum(r.taker_buy_quote_volume)"
        )
        source = f"{table} r WHERE r.symbol = %(symbol)s AND r.open_time >= %(open)s AND r.open_time <= %(close)s"
    sql = f"SELECT {aggregates}, {first}, {mark} FROM {source}"  # noqa: S608 - table names from INTERVALS
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        o, h, low, c, v, qv, n, tb, tq, first_id, last_id = cursor.fetchone()
    mark_id = -1 if last_id is None else last_id
    if not n:
        return KlineSeed(None, mark_id)
    candle = Candle(
        symbol=symbol,
        interval=interval,
        open_ms=open_ms,
        close_ms=close_ms,
        first_id=first_id if first_id is not None else mark_id,
        last_id=mark_id,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
        quote_volume=qv,
        trades=int(n),
        taker_buy_volume=tb,
        taker_buy_quote_volume=tq,
    )
    return KlineSeed(candle, mark_id)


def day_windows(*, symbols: list[str], now: datetime) -> dict[str, DayWindow]:
    """The 24 hour rolling figures of these symbols (those that ever traded), in one query."""
    return {
        s.symbol: DayWindow(
            symbol=s.symbol,
            last_price=s.last_price,
            open=s.open,
            high=s.high,
            low=s.low,
            volume=s.volume or Decimal(0),
            quote_volume=s.quote_volume or Decimal(0),
            last_id=s.last_id if s.last_id is not None else -1,
        )
        for s in candles.day_stats_list(symbols=symbols, now=now)
    }


def symbols_known() -> set[str]:
    """Every symbol a trade of which was folded (what GET /api/v3/klines answers for)."""
    return set(candles.symbol_list())
