"""Ending an order before it fills: a user's or operator's cancel, and the expiry of unfilled immediate orders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.exceptions import ApplicationError
from orders import filters
from orders.models import OPEN_STATUSES, Order, OrderStatus, OrderType, Saga, SagaState, TimeInForce
from orders.saga import STEP_RELEASE_FUNDS, saga_advance
from orders.services.events import funds_release_request, order_event_emit

if TYPE_CHECKING:
    from orders.services.fills import OrderWrites

CANCELED_BY_USER = "canceled by user"


def order_cancel(
    *, order_id: uuid.UUID | str, user_id: uuid.UUID | None = None, reason: str = CANCELED_BY_USER
) -> Order:
    """Cancel an open (or still reserving) order of this user (any user's when user_id is None).

    portfolio_svc releases what is still locked when it reads order.cancelled, which follows every fill of
    the order on order-events. An order still reserving has no fills, and its reservation may not exist
    yet: its saga is compensated with release_funds, which follows reserve_funds on the same key.
    """
    try:
        order_uuid = uuid.UUID(str(order_id))
    except ValueError:
        raise filters.OrderNotFound("Order does not exist.") from None
    with transaction.atomic():
        qs = Order.objects.select_for_update().filter(id=order_uuid)
        if user_id is not None:
            qs = qs.filter(user_id=user_id)
        order = qs.first()
        if order is None:
            raise filters.OrderNotFound("Order does not exist.")
        if order.status == OrderStatus.PENDING_NEW:
            saga = Saga.objects.select_for_update().get(order=order)
            saga.order = order
            if saga.state == SagaState.RESERVING:
                funds_release_request(saga, reason="canceled")
                saga_advance(saga, state=SagaState.COMPENSATED, step=STEP_RELEASE_FUNDS, note=reason)
        elif order.status not in OPEN_STATUSES:
            raise ApplicationError(
                f"Order is {order.status}: only an open order can be canceled.",
                code=filters.CANCEL_REJECTED,
                details={"status": order.status},
            )
        order_end(order, status=OrderStatus.CANCELED, reason=reason)
        return order


def order_end(order: Order, *, status: str, reason: str, writes: OrderWrites | None = None) -> None:
    """CANCELED or EXPIRED, with order.cancelled (the caller holds the transaction and the order's lock).

    The fill engine passes the `writes` of its batch, which collect the change for its bulk statements; for
    any other caller it is written now.
    """
    order.status = status
    order.reason = reason[:255]
    if writes is not None:
        writes.order_changed(order)
        writes.order_event(order, "order.cancelled", status=status, reason=order.reason)
        return
    order.save(update_fields=["status", "reason", "updated_at"])
    order_event_emit(order, "order.cancelled", status=status, reason=order.reason)


def orders_expire_unfilled_immediate(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire MARKET, IOC and FOK orders no (crossing) trade reached in time; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ORDER_IMMEDIATE_TIMEOUT_S)
    immediate = Q(type=OrderType.MARKET) | Q(time_in_force__in=[TimeInForce.IOC, TimeInForce.FOK])
    due = list(
        Order.objects.filter(immediate, status=OrderStatus.NEW, accepted_at__lte=cutoff).values_list("id", flat=True)[
            :limit
        ]
    )
    expired = 0
    for order_id in due:
        with transaction.atomic():
            # skip_locked: an order the fill engine holds is being filled right now; the next sweep decides.
            order = (
                Order.objects.select_for_update(skip_locked=True).filter(id=order_id, status=OrderStatus.NEW).first()
            )
            if order is None:
                continue
            order_end(order, status=OrderStatus.EXPIRED, reason="no trade in time")
            expired += 1
    return expired
