"""Reads of transaction_svc: the ledger for one user (filtered, exported, summed) and its partitions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet, Sum

from transactions.models import Side, Transaction
from transactions.partitions import DEFAULT_PARTITION, PARENT, Month

EXPORT_COLUMNS = (
    "executed_at",
    "id",
    "order_id",
    "fill_id",
    "symbol",
    "side",
    "base_asset",
    "quote_asset",
    "price",
    "qty",
    "quote_qty",
    "fee",
    "fee_asset",
)


@dataclass(frozen=True)
class TransactionFilters:
    symbol: str | None = None
    side: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AssetTotals:
    asset: str
    bought: Decimal  # acquired through fills (base on BUY, quote on SELL)
    sold: Decimal  # given up through fills (quote on BUY, base on SELL)
    fees: Decimal  # charged in this asset

    @property
    def net(self) -> Decimal:
        return self.bought - self.sold - self.fees


@dataclass(frozen=True)
class Partition:
    name: str
    bounds: str  # PostgreSQL's own text: FOR VALUES FROM (...) TO (...), or DEFAULT
    rows: int | None = None


def transaction_list(*, user_id: uuid.UUID, filters: TransactionFilters) -> QuerySet[Transaction]:
    """One user's transactions, newest first; a time range keeps the query to that range's partitions."""
    qs = Transaction.objects.filter(user_id=user_id)
    if filters.symbol:
        qs = qs.filter(symbol=filters.symbol)
    if filters.side:
        qs = qs.filter(side=filters.side)
    if filters.start is not None:
        qs = qs.filter(executed_at__gte=filters.start)
    if filters.end is not None:
        qs = qs.filter(executed_at__lt=filters.end)
    return qs.order_by("-executed_at", "-id")


def transaction_export_rows(
    *, user_id: uuid.UUID, filters: TransactionFilters, chunk_size: int = 2000
) -> Iterator[tuple]:
    """The rows of the export, in EXPORT_COLUMNS order, fetched chunk by chunk through a server-side cursor.

    Iterate it inside a transaction: then the cursor streams as PostgreSQL produces rows (outside one,
    Django declares it WITH HOLD and PostgreSQL materialises the whole result first).
    """
    qs = transaction_list(user_id=user_id, filters=filters).values_list(*EXPORT_COLUMNS)
    return qs.iterator(chunk_size=chunk_size)


def transaction_summary(*, user_id: uuid.UUID, filters: TransactionFilters) -> list[AssetTotals]:
    """Per-asset totals over the filtered transactions: what was bought, sold and paid in fees."""
    qs = transaction_list(user_id=user_id, filters=filters).order_by()
    bought: dict[str, Decimal] = {}
    sold: dict[str, Decimal] = {}
    fees: dict[str, Decimal] = {}
    legs = qs.values("side", "base_asset", "quote_asset").annotate(qty=Sum("qty"), quote_qty=Sum("quote_qty"))
    for leg in legs:
        base, quote = leg["base_asset"], leg["quote_asset"]
        if leg["side"] == Side.BUY:
            _add(bought, base, leg["qty"])
            _add(sold, quote, leg["quote_qty"])
        else:
            _add(sold, base, leg["qty"])
            _add(bought, quote, leg["quote_qty"])
    for row in qs.values("fee_asset").annotate(fee=Sum("fee")):
        _add(fees, row["fee_asset"], row["fee"])
    zero = Decimal(0)
    return [
        AssetTotals(asset, bought.get(asset, zero), sold.get(asset, zero), fees.get(asset, zero))
        for asset in sorted(bought.keys() | sold.keys() | fees.keys())
    ]


def _add(totals: dict[str, Decimal], asset: str, amount: Decimal) -> None:
    totals[asset] = totals.get(asset, Decimal(0)) + amount


def partition_list(*, with_counts: bool = False) -> list[Partition]:
    """The ledger's partitions as the catalog has them, oldest month first, the default last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [PARENT],
        )
        rows = cursor.fetchall()
        partitions = []
        for name, bounds in rows:
            count = None
            if with_counts:
                cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - a name from the catalog
                count = cursor.fetchone()[0]
            partitions.append(Partition(name, bounds, count))
    return sorted(partitions, key=lambda p: p.name == DEFAULT_PARTITION)


def default_partition_rows() -> dict[Month, int]:
    """Rows that landed in the default partition, counted by month: empty in normal operation."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', executed_at AT TIME ZONE 'UTC') AS month, count(*) "  # noqa: S608
            f'FROM "{DEFAULT_PARTITION}" GROUP BY 1 ORDER BY 1'
        )
        return {Month(month.year, month.month): count for month, count in cursor.fetchall()}
