"""Every read of order_svc beyond a plain .get()."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, QuerySet

from orders.filters import OrderNotFound
from orders.models import Fill, LastTrade, Order, Symbol

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
