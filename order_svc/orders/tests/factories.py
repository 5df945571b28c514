"""Builders of orders in a given state, through the services (never by writing rows behind their back)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from orders.models import Order
from orders.services import Trade, order_place, saga_reservation_confirm, trades_apply


def place(user_id: uuid.UUID | None = None, **params) -> Order:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type_": "LIMIT",
        "time_in_force": "GTC",
        "quantity": Decimal("0.01000"),
        "price": Decimal("30000.00"),
        **params,
    }
    if params["type_"] == "MARKET":
        params.pop("time_in_force", None)
        params.pop("price", None)
    order, _ = order_place(user_id=user_id or uuid.uuid4(), **params)
    return order


def accept(order: Order) -> Order:
    saga_reservation_confirm(
        saga_id=str(order.saga.id), order_id=str(order.id), asset=order.reserved_asset, amount=order.reserved_amount
    )
    order.refresh_from_db()
    return order


def open_order(user_id: uuid.UUID | None = None, **params) -> Order:
    return accept(place(user_id, **params))


_trade_ids: dict[str, int] = {}


def trade(symbol: str = "BTCUSDT", *, price: str, qty: str, trade_id: int | None = None, ms: int = 1_700_000_000_000):
    if trade_id is None:
        trade_id = _trade_ids.get(symbol, 1000) + 1
    _trade_ids[symbol] = max(trade_id, _trade_ids.get(symbol, 0))
    return Trade(
        symbol=symbol,
        trade_id=trade_id,
        price=Decimal(price),
        qty=Decimal(qty),
        traded_at=datetime.fromtimestamp(ms / 1000, tz=UTC),
        buyer_is_maker=False,
    )


def trade_data(symbol: str = "BTCUSDT", *, price: str, qty: str, trade_id: int, ms: int = 1_700_000_000_000) -> dict:
    """The market-data `trade` payload, as Binance sends it."""
    return {"e": "trade", "E": ms, "s": symbol, "t": trade_id, "p": price, "q": qty, "T": ms, "m": False}


def apply(*trades: Trade) -> int:
    return trades_apply(trades=list(trades))
