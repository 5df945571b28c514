"""The events and commands order_svc publishes, each with its OrderEvent history row (callers hold the transaction).

Build messages with order_fact / funds_reserve_command / funds_release_command and write all of a batch's at once
with order_events_emit: one outbox INSERT and one order_events INSERT, whatever their number. The one-item
functions (order_event_emit, funds_reserve_request, funds_release_request) are that with a single message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.events import Envelope
from common.outbox.services import Outgoing, publish_many
from common.topics import Topic
from orders.models import Order, OrderEvent, Saga
from orders.notifications import statuses_notify

# The facts that follow a change of the order's status: their orders' waiters are told (orders.notifications).
STATUS_FACTS = frozenset({"order.accepted", "order.rejected", "order.filled", "order.cancelled"})


@dataclass(frozen=True)
class OrderMessage:
    """One event or command about an order: its outbox row and, once emitted, a row of the order's history."""

    order: Order
    outgoing: Outgoing


def order_fact(
    order: Order, type_: str, *, cause: Envelope | None = None, traceparent: str | None = None, **data: Any
) -> OrderMessage:
    """An order-events fact about `order`, keyed by the order (`cause`: the event it answers)."""
    payload = {"order_id": str(order.id), "user_id": str(order.user_id), "symbol": order.symbol_id, **data}
    return OrderMessage(
        order, Outgoing(Topic.ORDER_EVENTS, type_, str(order.id), payload, cause=cause, traceparent=traceparent)
    )


def _command(saga: Saga, order: Order, type_: str, data: dict[str, Any], cause: Envelope | None) -> OrderMessage:
    payload = {"order_id": str(order.id), "saga_id": str(saga.id), "user_id": str(order.user_id), **data}
    # Keyed by user: the commands of one user stay in order, so a release never overtakes its reserve.
    return OrderMessage(order, Outgoing(Topic.PORTFOLIO_COMMANDS, type_, str(order.user_id), payload, cause=cause))


def funds_reserve_command(
    saga: Saga, *, asset: str, amount: Decimal, order: Order | None = None, cause: Envelope | None = None
) -> OrderMessage:
    return _command(saga, order or saga.order, "portfolio.reserve_funds", {"asset": asset, "amount": amount}, cause)


def funds_release_command(
    saga: Saga, *, reason: str, order: Order | None = None, cause: Envelope | None = None
) -> OrderMessage:
    return _command(saga, order or saga.order, "portfolio.release_funds", {"reason": reason}, cause)


def order_events_emit(messages: Sequence[OrderMessage]) -> list[Envelope]:
    """Publish every message with one outbox INSERT and keep each in its order's history with one more INSERT;
    the orders whose status changed are notified with one statement more (none for a placement)."""
    if not messages:
        return []
    envelopes = publish_many([m.outgoing for m in messages])
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(order=m.order, event_id=e.id, type=e.type, data=e.data)
            for m, e in zip(messages, envelopes, strict=True)
        ]
    )
    statuses_notify(m.order for m in messages if m.outgoing.type in STATUS_FACTS)
    return envelopes


def order_event_emit(order: Order, type_: str, **data: Any) -> None:
    """Publish an order-events fact about `order` and keep it in the order's history."""
    order_events_emit([order_fact(order, type_, **data)])


def funds_reserve_request(saga: Saga, *, asset: str, amount: Decimal) -> None:
    order_events_emit([funds_reserve_command(saga, asset=asset, amount=amount)])


def funds_release_request(saga: Saga, *, reason: str) -> None:
    order_events_emit([funds_release_command(saga, reason=reason)])
