"""Test data built through the services, so every balance has its ledger entries and reconciles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from common.events import Envelope
from portfolios.models import Portfolio
from portfolios.services import balance_credit, fill_settle, portfolio_create, reservation_reserve


def portfolio_with(user_id: uuid.UUID, *, name: str = "Default", **funds: str) -> Portfolio:
    """A (default, unless named otherwise) portfolio credited with these funds: portfolio_with(u, USDT="100")."""
    portfolio = portfolio_create(user_id=user_id, name=name, is_default=name == "Default")
    for asset, amount in funds.items():
        balance_credit(portfolio_id=portfolio.id, asset=asset, amount=amount, reason="test")
    return portfolio


def reserve(user_id: uuid.UUID, asset: str, amount: str, *, order_id: str | None = None):
    order_id = order_id or f"o-{uuid.uuid4().hex[:12]}"
    return reservation_reserve(order_id=order_id, saga_id=f"s-{order_id}", user_id=user_id, asset=asset, amount=amount)


def fill(reservation, *, side: str, qty: str, price: str, fee: str, status: str, fill_id: str | None = None, **kw):
    """Settle a fill of the reservation's order on BTCUSDT (fee in the received asset unless fee_asset=)."""
    qty_d, price_d = Decimal(qty), Decimal(price)
    return fill_settle(
        fill_id=fill_id or f"f-{uuid.uuid4().hex[:12]}",
        order_id=reservation.order_id,
        user_id=reservation.user_id,
        side=side,
        base_asset=kw.get("base_asset", "BTC"),
        quote_asset=kw.get("quote_asset", "USDT"),
        qty=qty_d,
        quote_qty=Decimal(kw["quote_qty"]) if "quote_qty" in kw else qty_d * price_d,
        fee=Decimal(fee),
        fee_asset=kw.get("fee_asset", "BTC" if side == "BUY" else "USDT"),
        order_status=status,
        executed_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


# --- the envelopes the consumers read -------------------------------------------------------------------


def reserve_command(
    user_id: uuid.UUID | str, order_id: str, amount: str, *, asset: str = "USDT", subject: str | None = None
) -> Envelope:
    data = {"order_id": order_id, "saga_id": f"s-{order_id}", "user_id": str(user_id), "asset": asset, "amount": amount}
    return Envelope.new("portfolio.reserve_funds", source="order_svc", subject=subject or str(user_id), data=data)


def release_command(user_id: uuid.UUID | str, order_id: str, *, reason: str = "saga timed out") -> Envelope:
    data = {"order_id": order_id, "saga_id": f"s-{order_id}", "user_id": str(user_id), "reason": reason}
    return Envelope.new("portfolio.release_funds", source="order_svc", subject=str(user_id), data=data)


def order_filled(
    user_id: uuid.UUID | str,
    order_id: str,
    fill_id: str,
    *,
    qty: str,
    price: str,
    status: str,
    side: str = "BUY",
    fee: str = "0",
    subject: str | None = None,
) -> Envelope:
    """order.filled of a BTCUSDT order (fee in the received asset)."""
    data = {
        "fill_id": fill_id,
        "order_id": order_id,
        "user_id": str(user_id),
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "side": side,
        "price": price,
        "qty": qty,
        "quote_qty": str(Decimal(qty) * Decimal(price)),
        "fee": fee,
        "fee_asset": "BTC" if side == "BUY" else "USDT",
        "status": status,
        "remaining_qty": "0",
        "executed_at": "2025-01-01T00:00:00Z",
    }
    return Envelope.new("order.filled", source="order_svc", subject=subject or order_id, data=data)


def order_cancelled(user_id: uuid.UUID | str, order_id: str, *, subject: str | None = None) -> Envelope:
    data = {"order_id": order_id, "user_id": str(user_id), "symbol": "BTCUSDT", "status": "CANCELED"}
    return Envelope.new("order.cancelled", source="order_svc", subject=subject or order_id, data=data)


def trade(symbol: str, trade_id: int, price: str, time_ms: int) -> Envelope:
    data = {"e": "trade", "E": time_ms, "s": symbol, "t": trade_id, "p": price, "q": "1", "T": time_ms, "m": False}
    return Envelope.new("trade", source="analytics_svc", subject=symbol, data=data)
