"""Writes of the candles app: fold a batch of trades into 1m candles and roll them up, exactly once; keep the
trades themselves for a day and a bit (Binance's trade lists, tickers and average price read them)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction

from candles.intervals import INTERVALS, ROLLUPS, ms_to_datetime
from candles.trades import Trade
from common.bulk import delete_older_than

logger = logging.getLogger(__name__)

_MINUTE = INTERVALS["1m"]
# The 24 hour ticker reads the first trade of its window, a minute more than a day ago at most.
TRADES_KEPT = timedelta(hours=25)
_SUMS = ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")


@dataclass(slots=True)
class _Fold:
    """The part of one 1m candle that one batch contributes."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    taker_buy_volume: Decimal = Decimal(0)
    taker_buy_quote_volume: Decimal = Decimal(0)


@dataclass
class ApplyResult:
    applied: int = 0
    skipped: int = 0  # at or below the symbol's last applied trade id: redelivered
    minutes: int = 0
    last_trade_ids: dict[str, int] = field(default_factory=dict)


def trades_apply(*, trades: Iterable[Trade]) -> ApplyResult:
    """Fold trades into ohlcv_1m and recompute the touched 5m/15m/1h buckets, in one transaction.

    Exactly-once effect without an inbox: per symbol, trades are folded in trade-id order and only those
    above the symbol's last applied id count; the new mark is written in the same transaction as the
    candles, under a row lock, so a redelivered or concurrent batch can never count a trade twice.
    """
    by_symbol: dict[str, dict[int, Trade]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, {})[trade.trade_id] = trade  # the same id twice counts once
    result = ApplyResult()
    if not by_symbol:
        return result
    with transaction.atomic(), connection.cursor() as cursor:
        marks = _lock_marks(cursor, sorted(by_symbol))
        folds: dict[tuple[str, int], _Fold] = {}
        cursor_rows = []
        kept: list[Trade] = []
        for symbol, trades_by_id in by_symbol.items():
            mark = marks[symbol]
            fresh = [trades_by_id[i] for i in sorted(trades_by_id) if i > mark]
            result.skipped += len(trades_by_id) - len(fresh)
            if not fresh:
                continue
            _fold(symbol, fresh, folds)
            kept.extend(fresh)
            last = fresh[-1]
            result.applied += len(fresh)
            result.last_trade_ids[symbol] = last.trade_id
            cursor_rows.append((symbol, last.trade_id, last.price, ms_to_datetime(last.time_ms), len(fresh)))
        if folds:
            _upsert_minutes(cursor, folds)
            touched = {(symbol, minute) for symbol, minute in folds}
            for interval in ROLLUPS:
                touched = {(symbol, interval.bucket(t)) for symbol, t in touched}
                _rollup(cursor, interval.name, touched)
            _advance_marks(cursor, cursor_rows)
            _keep_trades(cursor, kept)
        result.minutes = len(folds)
    if result.skipped:
        logger.info("redelivered trades skipped", extra={"skipped": result.skipped, "applied": result.applied})
    return result


def _lock_marks(cursor, symbols: list[str]) -> dict[str, int]:
    # Insert-or-touch returns each symbol's mark and row-locks it until commit, in one round trip; the
    # sorted order keeps two consumers from deadlocking on the same symbols.
    cursor.execute(
        "INSERT INTO candle_symbol_cursors AS c (symbol, last_trade_id, trades_applied, updated_at) "
        "SELECT s, -1, 0, now() FROM unnest(%s::text[]) AS u(s) ORDER BY s "
        "ON CONFLICT (symbol) DO UPDATE SET symbol = c.symbol RETURNING symbol, last_trade_id",
        [symbols],
    )
    return dict(cursor.fetchall())


def _fold(symbol: str, trades: list[Trade], folds: dict[tuple[str, int], _Fold]) -> None:
    """Trades in id order: the first of a minute opens it, the last closes it."""
    minute_ms = _MINUTE.ms
    key, fold = None, None
    for trade in trades:
        price, qty = Decimal(trade.price), Decimal(trade.qty)
        quote = price * qty
        bucket = (symbol, trade.time_ms - trade.time_ms % minute_ms)
        if bucket != key:
            key = bucket
            fold = folds.get(bucket)
            if fold is None:
                fold = folds[bucket] = _Fold(price, price, price, price)
        if price > fold.high:
            fold.high = price
        elif price < fold.low:
            fold.low = price
        fold.close = price
        fold.volume += qty
        fold.quote_volume += quote
        fold.trades += 1
        if not trade.buyer_is_maker:  # the buyer took liquidity: a taker buy
            fold.taker_buy_volume += qty
            fold.taker_buy_quote_volume += quote


def _upsert_minutes(cursor, folds: dict[tuple[str, int], _Fold]) -> None:
    rows = [
        (
            symbol,
            ms_to_datetime(minute),
            f.open,
            f.high,
            f.low,
            f.close,
            f.volume,
            f.quote_volume,
            f.trades,
            f.taker_buy_volume,
            f.taker_buy_quote_volume,
        )
        for (symbol, minute), f in folds.items()
    ]
    # A minute already stored keeps its open (earlier trade ids); everything else merges.
    cursor.execute(
        "INSERT INTO ohlcv_1m AS c (symbol, open_time, close_time, open, high, low, close, volume, quote_volume, "
        "trades, taker_buy_volume, taker_buy_quote_volume) "
        "SELECT s, t, t + %s - interval '1 millisecond', o, h, l, cl, v, qv, n, tb, tq "
        "FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], "
        "%s::numeric[], %s::numeric[], %s::int[], %s::numeric[], %s::numeric[]) "
        "AS u(s, t, o, h, l, cl, v, qv, n, tb, tq) "
        "ON CONFLICT (symbol, open_time) DO UPDATE SET "
        "high = GREATEST(c.high, EXCLUDED.high), low = LEAST(c.low, EXCLUDED.low), close = EXCLUDED.close, "
        "volume = c.volume + EXCLUDED.volume, quote_volume = c.quote_volume + EXCLUDED.quote_volume, "
        "trades = c.trades + EXCLUDED.trades, taker_buy_volume = c.taker_buy_volume + EXCLUDED.taker_buy_volume, "
        "taker_buy_quote_volume = c.taker_buy_quote_volume + EXCLUDED.taker_buy_quote_volume",
        [_MINUTE.span, *(list(col) for col in zip(*rows, strict=True))],
    )


def _rollup(cursor, interval: str, buckets: set[tuple[str, int]]) -> None:
    """Recompute whole buckets from their children: open of the first, close of the last, max, min, sums."""
    spec = INTERVALS[interval]
    child = INTERVALS[spec.child]
    symbols, times = zip(*((s, ms_to_datetime(t)) for s, t in sorted(buckets)), strict=True)
    sums = ", ".join(f"sum(c.{f})" for f in _SUMS)
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in ("open", "high", "low", "close", *_SUMS))
    cursor.execute(
        f"INSERT INTO {spec.table} (symbol, open_time, close_time, open, high, low, close, {', '.join(_SUMS)}) "  # noqa: S608 - table names from INTERVALS
        "SELECT b.s, b.t, b.t + %(span)s - interval '1 millisecond', "
        "(array_agg(c.open ORDER BY c.open_time))[1], max(c.high), min(c.low), "
        f"(array_agg(c.close ORDER BY c.open_time DESC))[1], {sums} "
        "FROM unnest(%(symbols)s::text[], %(times)s::timestamptz[]) AS b(s, t) "
        f"JOIN {child.table} c ON c.symbol = b.s AND c.open_time >= b.t AND c.open_time < b.t + %(span)s "
        "GROUP BY b.s, b.t "
        f"ON CONFLICT (symbol, open_time) DO UPDATE SET {updates}",
        {"span": spec.span, "symbols": list(symbols), "times": list(times)},
    )


def _keep_trades(cursor, trades: list[Trade]) -> None:
    """The batch's fresh trades, in one statement (only ids above the mark get here: no conflict to expect)."""
    cursor.execute(
        "INSERT INTO market_trades (symbol, trade_id, price, qty, quote_qty, traded_at, is_buyer_maker) "
        "SELECT s, t, p, q, p * q, tt, m "
        "FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::numeric[], %s::timestamptz[], %s::bool[]) "
        "AS u(s, t, p, q, tt, m) ON CONFLICT (symbol, trade_id) DO NOTHING",
        [
            [t.symbol for t in trades],
            [t.trade_id for t in trades],
            [t.price for t in trades],
            [t.qty for t in trades],
            [ms_to_datetime(t.time_ms) for t in trades],
            [t.buyer_is_maker for t in trades],
        ],
    )


def market_trades_purge(*, older_than: timedelta = TRADES_KEPT) -> int:
    """Forget the trades no endpoint reads any more (beat, every few minutes); chunked, short transactions."""
    return delete_older_than("market_trades", "traded_at", older_than=older_than)


def _advance_marks(cursor, rows: list[tuple]) -> None:
    cursor.execute(
        "UPDATE candle_symbol_cursors AS c SET last_trade_id = u.t, last_price = u.p, last_trade_time = u.tt, "
        "trades_applied = c.trades_applied + u.n, updated_at = now() "
        "FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::timestamptz[], %s::int[]) AS u(s, t, p, tt, n) "
        "WHERE c.symbol = u.s",
        [list(col) for col in zip(*rows, strict=True)],
    )
