"""Every read of order_svc beyond a plain .get()."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F, Max, Prefetch, Q, QuerySet, Sum

from orders.filters import OrderNotFound
from orders.models import (
    OPEN_STATUSES,
    Fill,
    LastTrade,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
)

# The symbols this process has met: the catalogue never changes while it runs (an operator's change to a
# symbol takes a restart). A name not listed is looked up again, so a pair seeded later needs no restart.
_symbols: dict[str, Symbol] = {}


def symbols_get(names: Iterable[str]) -> dict[str, Symbol]:
    """The listed symbols among `names`, trading or not; one query for those this process has not met yet."""
    names = list(names)
    unmet = [name for name in names if name not in _symbols]
    if unmet:
        _symbols.update({pair.symbol: pair for pair in Symbol.objects.filter(symbol__in=unmet)})
    return {name: _symbols[name] for name in names if name in _symbols}


def symbol_get(*, symbol: str) -> Symbol | None:
    """One listed symbol (trading or not), from the process's cache after the first time; None when not listed."""
    return symbols_get([symbol]).get(symbol)


def symbols_cache_clear() -> None:
    """Forget the symbols met so far (tests, whose database is reseeded)."""
    _symbols.clear()


def symbol_list() -> QuerySet[Symbol]:
    return Symbol.objects.filter(is_trading=True).order_by("symbol")


def symbol_catalogue(*, symbols: list[str] | None = None, trading: bool | None = None) -> list[Symbol]:
    """Every listed symbol, trading or not (Binance's exchangeInfo lists both), or these, or by status."""
    qs = Symbol.objects.order_by("symbol")
    if symbols is not None:
        qs = qs.filter(symbol__in=symbols)
    if trading is not None:
        qs = qs.filter(is_trading=trading)
    return list(qs)


# The book: the platform's own resting orders. A LIMIT GTC order rests once accepted until it is filled or
# cancelled; IOC and FOK orders never rest (they wait only for a crossing trade, then expire).
RESTING = Q(type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, status__in=OPEN_STATUSES)


@dataclass(frozen=True)
class Book:
    last_update_id: int
    bids: list[tuple[Decimal, Decimal]]  # (price, quantity left), best (highest) first
    asks: list[tuple[Decimal, Decimal]]  # best (lowest) first


def book_get(*, symbol: str, limit: int) -> Book:
    """The resting orders of a symbol by price level, `limit` levels a side. The update id (the newest order event,
    which every change of the book writes) is read first, so the levels are at least as new as it."""
    last_id = OrderEvent.objects.aggregate(last=Max("id"))["last"] or 0
    levels = (
        Order.objects.filter(RESTING, symbol_id=symbol)
        .values("price")
        .annotate(qty=Sum(F("quantity") - F("executed_qty")))
        .filter(qty__gt=0)
    )
    bids = levels.filter(side=Side.BUY).order_by("-price").values_list("price", "qty")[:limit]
    asks = levels.filter(side=Side.SELL).order_by("price").values_list("price", "qty")[:limit]
    return Book(last_id, list(bids), list(asks))


@dataclass(frozen=True)
class BestPrices:
    symbol: str
    bid: tuple[Decimal, Decimal] | None
    ask: tuple[Decimal, Decimal] | None


def best_prices_list(*, symbols: list[str]) -> list[BestPrices]:
    """The best bid and ask level of each symbol (None: that side is empty), in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (symbol, side) symbol, side, price, sum(quantity - executed_qty) "
            "FROM orders WHERE type = %s AND time_in_force = %s AND status = ANY(%s) AND symbol = ANY(%s) "
            "GROUP BY symbol, side, price HAVING sum(quantity - executed_qty) > 0 "
            "ORDER BY symbol, side, CASE WHEN side = %s THEN -price ELSE price END",
            [OrderType.LIMIT.value, TimeInForce.GTC.value, [s.value for s in OPEN_STATUSES], symbols, Side.BUY.value],
        )
        best = {(symbol, side): (price, qty) for symbol, side, price, qty in cursor.fetchall()}
    return [BestPrices(s, best.get((s, Side.BUY)), best.get((s, Side.SELL))) for s in symbols]


def last_trade_get(*, symbol: str) -> LastTrade | None:
    return LastTrade.objects.filter(symbol_id=symbol).first()


def _with_fills(qs: QuerySet[Order]) -> QuerySet[Order]:
    return qs.select_related("symbol").prefetch_related(
        Prefetch("fills", queryset=Fill.objects.order_by("executed_at"))
    )


def order_get(*, order_id: Any, user_id: uuid.UUID | None = None) -> Order:
    """An order of this user (any user's when user_id is None); OrderNotFound otherwise, also for a bad id."""
    try:
        order_uuid = uuid.UUID(str(order_id))
    except ValueError:
        raise OrderNotFound("Order does not exist.") from None
    qs = _with_fills(Order.objects.filter(id=order_uuid))
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    order = qs.first()
    if order is None:
        raise OrderNotFound("Order does not exist.")
    return order


def order_get_by_client_id(*, user_id: uuid.UUID, client_order_id: str) -> Order | None:
    return _with_fills(Order.objects.filter(user_id=user_id, client_order_id=client_order_id)).first()


def order_list(*, user_id: uuid.UUID, filters: dict[str, str] | None = None) -> QuerySet[Order]:
    """This user's orders, newest first, narrowed by symbol, status and side."""
    qs = Order.objects.filter(user_id=user_id)
    for field in ("symbol", "status", "side"):
        value = (filters or {}).get(field)
        if value:
            qs = qs.filter(**{"symbol_id" if field == "symbol" else field: value.upper()})
    return _with_fills(qs)


# --- Binance's /api/v3 reads: orders by their integer orderId, trades by fill number -------------------------------


@dataclass(frozen=True)
class OrderState:
    """Where an order stands: what a request waiting for its outcome needs (orders.notifications)."""

    status: str
    reason: str
    updated_at_ms: int


def order_state_get(*, order_id: Any) -> OrderState | None:
    row = Order.objects.filter(id=order_id).values_list("status", "reason", "updated_at").first()
    if row is None:
        return None
    status, reason, updated_at = row
    return OrderState(status=status, reason=reason, updated_at_ms=int(updated_at.timestamp() * 1000))


def order_find(
    *, user_id: uuid.UUID, symbol: str, number: int | None = None, client_order_id: str | None = None
) -> Order | None:
    """One of this user's orders of this symbol, as Binance looks one up: by orderId (and then the client order id
    must be that order's too, when given), else by client order id."""
    qs = Order.objects.filter(user_id=user_id, symbol_id=symbol)
    if number is not None:
        order = qs.filter(number=number).first()
        if order is not None and client_order_id is not None and order.client_order_id != client_order_id:
            return None
        return order
    if client_order_id is None:
        return None
    return qs.filter(client_order_id=client_order_id).first()


# Binance's open orders: accepted and not done; an order still waiting for its funds too (it can be cancelled).
BINANCE_OPEN_STATUSES = (OrderStatus.PENDING_NEW, *OPEN_STATUSES)


def orders_open_list(*, user_id: uuid.UUID, symbol: str | None = None) -> list[Order]:
    qs = Order.objects.filter(user_id=user_id, status__in=BINANCE_OPEN_STATUSES)
    if symbol is not None:
        qs = qs.filter(symbol_id=symbol)
    return list(qs.order_by("number"))


def _window(qs: QuerySet, field: str, start: datetime | None, end: datetime | None) -> QuerySet:
    if start is not None:
        qs = qs.filter(**{f"{field}__gte": start})
    if end is not None:
        qs = qs.filter(**{f"{field}__lte": end})
    return qs


def orders_history_list(
    *,
    user_id: uuid.UUID,
    symbol: str,
    from_number: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[Order]:
    """Binance's allOrders, oldest first: from an orderId or a start time onwards, else the newest `limit`."""
    qs = _window(Order.objects.filter(user_id=user_id, symbol_id=symbol), "created_at", start, end)
    if from_number is not None:
        qs = qs.filter(number__gte=from_number)
    if from_number is not None or start is not None:
        return list(qs.order_by("number")[:limit])
    return list(reversed(qs.order_by("-number")[:limit]))


def fills_list(
    *,
    user_id: uuid.UUID,
    symbol: str,
    order_number: int | None = None,
    from_number: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[Fill]:
    """Binance's myTrades, oldest first, each with its order: from a trade id or a start time onwards, else the
    newest `limit`."""
    qs = Fill.objects.filter(order__user_id=user_id, order__symbol_id=symbol).select_related("order")
    if order_number is not None:
        qs = qs.filter(order__number=order_number)
    qs = _window(qs, "executed_at", start, end)
    if from_number is not None:
        qs = qs.filter(number__gte=from_number)
    if from_number is not None or start is not None:
        return list(qs.order_by("number")[:limit])
    return list(reversed(qs.order_by("-number")[:limit]))
