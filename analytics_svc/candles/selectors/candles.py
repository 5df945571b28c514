"""Reads of the candles: klines of every Binance interval (stored, or rolled up from stored candles in one query),
symbols seen, latest prices."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from candles.intervals import (
    DAY_MS,
    EPOCH,
    KLINE_INTERVALS,
    Interval,
    KlineInterval,
    ms_to_datetime,
    rollup_source,
)
from candles.models import CANDLE_MODELS, Candle, SymbolCursor


@dataclass(frozen=True, slots=True)
class Kline:
    """A candle computed at read time (rolled up, or 1s from the kept trades): the stored candles' fields."""

    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


def kline_list(
    *,
    symbol: str,
    interval: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
    offset_ms: int = 0,
) -> list[Candle] | list[Kline]:
    """Klines with open time in [start, end], oldest first; without a start, the latest `limit` (Binance's rule).

    Buckets are laid out in the zone `offset_ms` from UTC (Binance's timeZone). A stored interval whose buckets
    fall on the zone's boundaries is read as stored; any other is rolled up, in one query, from the coarsest
    stored candles that tile it (1d from 1h; 1h in a +05:45 zone from 15m); 1s comes from the kept trades.
    """
    spec = KLINE_INTERVALS[interval]
    stored = spec.stored
    if stored is not None and offset_ms % stored.ms == 0:
        return _stored(symbol=symbol, interval=interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
    if spec.name == "1s":
        return _seconds(symbol=symbol, start_ms=start_ms, end_ms=end_ms, limit=limit)
    source = rollup_source(spec, offset_ms)
    return _rolled_up(spec, source, symbol=symbol, start_ms=start_ms, end_ms=end_ms, limit=limit, offset_ms=offset_ms)


def _stored(*, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
    qs: QuerySet[Candle] = CANDLE_MODELS[interval].objects.filter(symbol=symbol)
    if start_ms is not None:
        qs = qs.filter(open_time__gte=ms_to_datetime(start_ms))
    if end_ms is not None:
        qs = qs.filter(open_time__lte=ms_to_datetime(end_ms))
    if start_ms is not None:
        return list(qs.order_by("open_time")[:limit])
    return list(reversed(qs.order_by("-open_time")[:limit]))


def _bucket(spec: KlineInterval, at: str) -> str:
    """SQL: the open time of the bucket holding the instant `at`, in the request's zone."""
    if spec.ms is None:  # a calendar month of the zone: truncate its wall clock time, then back to UTC
        return f"((date_trunc('month', ({at}) AT TIME ZONE 'UTC' + %(offset)s) - %(offset)s) AT TIME ZONE 'UTC')"
    return f"date_bin(%(stride)s, {at}, %(origin)s)"


def _close(spec: KlineInterval, bucket: str) -> str:
    """SQL: the last millisecond of the bucket opening at `bucket`."""
    if spec.ms is None:
        wall = f"({bucket}) AT TIME ZONE 'UTC' + %(offset)s"
        return f"((({wall} + interval '1 month') - %(offset)s) AT TIME ZONE 'UTC' - interval '1 millisecond')"
    return f"(({bucket}) + %(stride)s - interval '1 millisecond')"


_AGGREGATES = (
    "(array_agg(r.open ORDER BY r.open_time))[1], max(r.high), min(r.low), "
    "(array_agg(r.close ORDER BY r.open_time DESC))[1], sum(r.volume), sum(r.quote_volume), sum(r.trades), "
    "sum(r.taker_buy_volume), sum(r.taker_buy_quote_volume)"
)


def _rolled_up(
    spec: KlineInterval,
    source: Interval,
    *,
    symbol: str,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    offset_ms: int,
) -> list[Kline]:
    """One query. The inner scan reads at most (limit + 1) buckets' worth of source candles in index order from
    the first (or last) wanted bucket: the `limit` newest (or oldest) buckets lie wholly inside it, and a bucket
    the cut leaves partial is older (or newer) than them, so it is dropped by the outer limit."""
    per_bucket = math.ceil((spec.ms or 31 * DAY_MS) / source.ms)
    order = "ASC" if start_ms is not None else "DESC"
    inner = ["c.symbol = %(symbol)s"]
    outer = []
    if start_ms is not None:
        inner.append(f"c.open_time >= {_bucket(spec, '%(start)s::timestamptz')}")
        outer.append("b.t >= %(start)s")
    if end_ms is not None:
        inner.append(f"c.open_time <= {_close(spec, _bucket(spec, '%(end)s::timestamptz'))}")
        outer.append("b.t <= %(end)s")
    offset = timedelta(milliseconds=offset_ms)
    params = {
        "symbol": symbol,
        "start": ms_to_datetime(start_ms) if start_ms is not None else None,
        "end": ms_to_datetime(end_ms) if end_ms is not None else None,
        "offset": offset,
        "stride": timedelta(milliseconds=spec.ms or 0),
        "origin": EPOCH + timedelta(milliseconds=spec.origin_ms) - offset,
        "rows": (limit + 1) * per_bucket,
        "limit": limit,
    }
    sql = (
        f"SELECT b.t, {_close(spec, 'b.t')}, b.o, b.h, b.l, b.c, b.v, b.qv, b.n, b.tb, b.tq FROM ("  # noqa: S608 - table names from INTERVALS
        f"SELECT {_bucket(spec, 'r.open_time')} AS t, {_AGGREGATES} FROM ("
        f"SELECT * FROM {source.table} c WHERE {' AND '.join(inner)} ORDER BY c.open_time {order} LIMIT %(rows)s"
        ") r GROUP BY 1) AS b(t, o, h, l, c, v, qv, n, tb, tq) "
        f"{'WHERE ' + ' AND '.join(outer) if outer else ''} ORDER BY b.t {order} LIMIT %(limit)s"
    )
    return _fetch_klines(sql, params, newest_first=start_ms is None)


def _seconds(*, symbol: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
    """1s klines from the kept trades (the last 25 hours), covering at most `limit` seconds: from the start, up to
    the end, or up to the symbol's last trade. A second without trades has no kline, as with every interval here."""
    if start_ms is not None:
        low = "date_trunc('second', %(start)s::timestamptz)"
        high = f"{low} + %(span)s"
        if end_ms is not None:
            high = f"LEAST({high}, date_trunc('second', %(end)s::timestamptz) + interval '1 second')"
    else:
        high = (
            "date_trunc('second', %(end)s::timestamptz) + interval '1 second'"
            if end_ms is not None
            else "(SELECT date_trunc('second', max(traded_at)) + interval '1 second' FROM market_trades "
            "WHERE symbol = %(symbol)s)"
        )
        low = f"{high} - %(span)s"
    outer = [cond for cond, ms in (("b.t >= %(start)s", start_ms), ("b.t <= %(end)s", end_ms)) if ms is not None]
    order = "ASC" if start_ms is not None else "DESC"
    params = {
        "symbol": symbol,
        "start": ms_to_datetime(start_ms) if start_ms is not None else None,
        "end": ms_to_datetime(end_ms) if end_ms is not None else None,
        "span": timedelta(seconds=limit),
        "limit": limit,
    }
    sql = (
        "SELECT b.t, b.t + interval '999 milliseconds', b.o, b.h, b.l, b.c, b.v, b.qv, b.n, b.tb, b.tq "  # noqa: S608 - SQL of this module's
        "FROM (SELECT date_trunc('second', r.traded_at), (array_agg(r.price ORDER BY r.trade_id))[1], max(r.price), "
        "min(r.price), (array_agg(r.price ORDER BY r.trade_id DESC))[1], sum(r.qty), sum(r.quote_qty), count(*), "
        "coalesce(sum(r.qty) FILTER (WHERE NOT r.is_buyer_maker), 0), "
        "coalesce(sum(r.quote_qty) FILTER (WHERE NOT r.is_buyer_maker), 0) "
        f"FROM market_trades r WHERE r.symbol = %(symbol)s AND r.traded_at >= {low} AND r.traded_at < {high} "
        "GROUP BY 1) AS b(t, o, h, l, c, v, qv, n, tb, tq) "
        f"{'WHERE ' + ' AND '.join(outer) if outer else ''} ORDER BY b.t {order} LIMIT %(limit)s"
    )
    return _fetch_klines(sql, params, newest_first=start_ms is None)


def _fetch_klines(sql: str, params: dict, *, newest_first: bool) -> list[Kline]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        klines = [Kline(*row) for row in cursor.fetchall()]
    return klines[::-1] if newest_first else klines


def symbol_exists(*, symbol: str) -> bool:
    """A symbol is known once a trade of it was folded."""
    return SymbolCursor.objects.filter(symbol=symbol).exists()


def symbol_list() -> list[str]:
    return list(SymbolCursor.objects.order_by("symbol").values_list("symbol", flat=True))


def symbols_known(symbols: list[str]) -> set[str]:
    return set(SymbolCursor.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))


def price_list(*, symbols: list[str] | None = None) -> list[SymbolCursor]:
    """The last traded price per symbol (all symbols, or these)."""
    qs = SymbolCursor.objects.filter(last_price__isnull=False).order_by("symbol")
    if symbols is not None:
        qs = qs.filter(symbol__in=symbols)
    return list(qs)


def latest_trade_time(*, symbol: str) -> datetime | None:
    return SymbolCursor.objects.filter(symbol=symbol).values_list("last_trade_time", flat=True).first()
