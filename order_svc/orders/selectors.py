"""Every read of order_svc beyond a plain .get()."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from orders.filters import OrderNotFound
from orders.models import Fill, LastTrade, Order, Symbol


def symbol_list() -> QuerySet[Symbol]:
    return Symbol.objects.filter(is_trading=True).order_by("symbol")


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
