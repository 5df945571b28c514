"""Last prices per symbol from market-data trades: a read model ordered by (trade time, trade id)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from portfolios.amounts import MAX_PLACES, quantize
from portfolios.models import Price

SYMBOL_MAX_LENGTH = Price._meta.get_field("symbol").max_length


def prices_apply_trades(*, trades: Iterable[dict[str, Any]]) -> int:
    """Keep the newest trade per symbol; an older or repeated trade changes nothing. Returns rows written.

    Idempotent by its natural key, so the consumer needs no inbox: only the newest trade of each symbol in
    a batch is written, with one upsert guarded by (trade time, trade id).
    """
    newest: dict[str, tuple[int, int, str]] = {}
    for trade in trades:
        if len(trade["s"]) > SYMBOL_MAX_LENGTH:
            continue  # no symbol this service values is that long; the read model need not hold it
        key = (trade["T"], trade["t"])
        if trade["s"] not in newest or key > newest[trade["s"]][:2]:
            newest[trade["s"]] = (trade["T"], trade["t"], trade["p"])
    if not newest:
        return 0
    symbols = sorted(newest)  # a fixed order: two consumers upserting the same symbols never deadlock
    # A read model: a price with more decimals than the column holds is cut to its scale, not refused.
    prices = [quantize(Decimal(newest[s][2]), MAX_PLACES) for s in symbols]
    trade_ids = [newest[s][1] for s in symbols]
    times = [datetime.fromtimestamp(newest[s][0] / 1000, tz=UTC) for s in symbols]
    # One statement, atomic by itself: no savepoint inside the consumer's batch transaction.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO prices (symbol, price, trade_id, trade_time, updated_at) "
            "SELECT s, p, t, tt, %s FROM unnest(%s::text[], %s::numeric[], %s::bigint[], %s::timestamptz[]) "
            "AS u(s, p, t, tt) "
            "ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price, trade_id = EXCLUDED.trade_id, "
            "trade_time = EXCLUDED.trade_time, updated_at = EXCLUDED.updated_at "
            "WHERE (prices.trade_time, prices.trade_id) < (EXCLUDED.trade_time, EXCLUDED.trade_id)",
            [timezone.now(), symbols, prices, trade_ids, times],
        )
        return cursor.rowcount
