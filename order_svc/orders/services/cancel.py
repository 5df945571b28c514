"""Ending an order before it fills: a user's or operator's cancel, and the expiry of unfilled immediate orders."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import psycopg2.errors
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from common.bulk import bulk_update
from common.exceptions import ApplicationError
from orders import filters
from orders.models import OPEN_STATUSES, Order, OrderStatus, OrderType, Saga, SagaState, TimeInForce
from orders.saga import SAGA_FIELDS, STEP_RELEASE_FUNDS, saga_advance, saga_transition
from orders.services.events import (
    OrderMessage,
    funds_release_command,
    funds_release_request,
    order_event_emit,
    order_events_emit,
    order_fact,
)

if TYPE_CHECKING:
    from orders.services.fills import OrderWrites

CANCELED_BY_USER = "canceled by user"


def order_cancel(
    *,
    order_id: uuid.UUID | str,
    user_id: uuid.UUID | None = None,
    reason: str = CANCELED_BY_USER,
    only_statuses: Collection[str] | None = None,
) -> Order:
    """Cancel an open (or still reserving) order of this user (any user's when user_id is None).

    `only_statuses`: cancel only an order in one of these (Binance's cancelRestrictions), -2011 otherwise.

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
        if only_statuses is not None and order.status not in only_statuses:
            raise filters.CancelRestricted(
                "Order was not canceled due to cancel restrictions.", details={"status": order.status}
            )
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


# Binance's "cancel all open orders on a symbol" may meet a fill batch or a batch of saga replies holding some of
# the same orders; each locks in an order of its own, so PostgreSQL may break a deadlock by failing one of them.
_DEADLOCK_RETRIES = 3


def orders_cancel_open(*, user_id: uuid.UUID, symbol: str, reason: str = CANCELED_BY_USER) -> list[Order]:
    """Cancel every open (or still reserving) order of this user on this symbol in one transaction; returns them,
    oldest first (none: an empty list).

    Set-based: the orders are locked with one statement (in the fill engine's order: by acceptance, the ones still
    reserving last), their reserving sagas with one more, and the cancels written with one UPDATE per table and
    one INSERT of outbox rows and order events, whatever their number.
    """
    for attempt in range(_DEADLOCK_RETRIES):
        try:
            return _cancel_open(user_id=user_id, symbol=symbol, reason=reason)
        except OperationalError as exc:
            if not isinstance(exc.__cause__, psycopg2.errors.DeadlockDetected) or attempt + 1 == _DEADLOCK_RETRIES:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _cancel_open(*, user_id: uuid.UUID, symbol: str, reason: str) -> list[Order]:
    with transaction.atomic():
        orders = list(
            Order.objects.select_for_update()
            .filter(user_id=user_id, symbol_id=symbol, status__in=[OrderStatus.PENDING_NEW, *OPEN_STATUSES])
            .order_by(F("accepted_at").asc(nulls_last=True), "id")
        )
        if not orders:
            return []
        pending = sorted(o.id for o in orders if o.status == OrderStatus.PENDING_NEW)
        sagas = (
            {
                saga.order_id: saga
                for saga in Saga.objects.select_for_update()
                .filter(order_id__in=pending, state=SagaState.RESERVING)
                .order_by("id")
            }
            if pending
            else {}
        )
        messages: list[OrderMessage] = []
        for order in orders:
            saga = sagas.get(order.id)
            if saga is not None:
                saga.order = order
                messages.append(funds_release_command(saga, reason="canceled", order=order))
                saga_transition(saga, state=SagaState.COMPENSATED, step=STEP_RELEASE_FUNDS, note=reason)
            order.status, order.reason = OrderStatus.CANCELED, reason[:255]
            messages.append(order_fact(order, "order.cancelled", status=OrderStatus.CANCELED, reason=order.reason))
        bulk_update(orders, ["status", "reason", "updated_at"])
        if sagas:
            bulk_update(list(sagas.values()), SAGA_FIELDS)
        order_events_emit(messages)
    return sorted(orders, key=lambda o: o.number)


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
