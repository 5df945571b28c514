"""The events and commands order_svc publishes, each with its OrderEvent history row (callers hold the transaction)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.outbox.services import publish
from common.topics import Topic
from orders.models import Order, OrderEvent, Saga


def order_event_emit(order: Order, type_: str, **data: Any) -> None:
    """Publish an order-events fact about `order` and keep it in the order's history."""
    payload = {"order_id": str(order.id), "user_id": str(order.user_id), "symbol": order.symbol_id, **data}
    envelope = publish(Topic.ORDER_EVENTS, type_, str(order.id), payload)
    OrderEvent.objects.create(order=order, event_id=envelope.id, type=type_, data=envelope.data)


def funds_reserve_request(saga: Saga, *, asset: str, amount: Decimal) -> None:
    order = saga.order
    data = {"order_id": str(order.id), "saga_id": str(saga.id), "user_id": str(order.user_id)}
    # Keyed by user: the commands of one user stay in order, so a release never overtakes its reserve.
    envelope = publish(
        Topic.PORTFOLIO_COMMANDS,
        "portfolio.reserve_funds",
        str(order.user_id),
        {**data, "asset": asset, "amount": amount},
    )
    OrderEvent.objects.create(order=order, event_id=envelope.id, type=envelope.type, data=envelope.data)


def funds_release_request(saga: Saga, *, reason: str) -> None:
    order = saga.order
    data = {"order_id": str(order.id), "saga_id": str(saga.id), "user_id": str(order.user_id), "reason": reason}
    envelope = publish(Topic.PORTFOLIO_COMMANDS, "portfolio.release_funds", str(order.user_id), data)
    OrderEvent.objects.create(order=order, event_id=envelope.id, type=envelope.type, data=envelope.data)
