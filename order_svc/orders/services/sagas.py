"""The saga's reactions: portfolio_svc's replies, deadlines that pass, and an operator's retry."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from orders.models import Order, OrderStatus, Saga, SagaState
from orders.saga import (
    STEP_ACCEPTED,
    STEP_REJECTED,
    STEP_RELEASE_FUNDS,
    STEP_RESERVE_FUNDS,
    saga_advance,
    saga_deadline,
    saga_note,
)
from orders.services.events import funds_release_request, funds_reserve_request, order_event_emit

logger = logging.getLogger(__name__)

TIMEOUT_REASON = "timeout"


def _lock(*, saga_id: str, order_id: str | None = None) -> tuple[Saga, Order] | None:
    """Lock the order, then its saga (the order first everywhere, so cancel and replies never deadlock)."""
    try:
        saga_uuid = uuid.UUID(str(saga_id))
    except ValueError:
        return None
    found = Saga.objects.filter(id=saga_uuid).values_list("order_id", flat=True).first()
    if found is None or (order_id is not None and str(found) != str(order_id)):
        return None
    order = Order.objects.select_for_update().select_related("symbol").get(id=found)
    saga = Saga.objects.select_for_update().get(id=saga_uuid)
    saga.order = order
    return saga, order


def saga_reservation_confirm(*, saga_id: str, order_id: str, asset: str, amount: Decimal) -> str:
    """balance.reserved: accept the order, or release a reservation the saga no longer wants. Returns the outcome."""
    with transaction.atomic():
        locked = _lock(saga_id=saga_id, order_id=order_id)
        if locked is None:
            logger.warning("reply for an unknown saga ignored", extra={"saga_id": saga_id, "order_id": order_id})
            return "unknown"
        saga, order = locked
        if saga.state == SagaState.RESERVING:
            order.status = OrderStatus.NEW
            order.accepted_at = timezone.now()
            order.save(update_fields=["status", "accepted_at", "updated_at"])
            saga_advance(saga, state=SagaState.COMPLETED, step=STEP_ACCEPTED, note=f"reserved {amount} {asset}")
            order_event_emit(order, "order.accepted", status=OrderStatus.NEW)
            return "accepted"
        if saga.state == SagaState.COMPLETED:
            return "duplicate"
        # The saga gave up (timeout, cancel, refusal) before this reservation was made: undo it.
        saga_note(saga, step=STEP_RELEASE_FUNDS, note=f"late reservation of {amount} {asset}: released")
        funds_release_request(saga, reason="late reservation")
        return "released"


def saga_reservation_fail(*, saga_id: str, order_id: str, reason: str) -> str:
    """balance.reservation_failed: reject the order with portfolio_svc's reason. Returns the outcome."""
    with transaction.atomic():
        locked = _lock(saga_id=saga_id, order_id=order_id)
        if locked is None:
            logger.warning("reply for an unknown saga ignored", extra={"saga_id": saga_id, "order_id": order_id})
            return "unknown"
        saga, order = locked
        if saga.state != SagaState.RESERVING:
            return "ignored"
        _reject(order, reason=reason)
        saga_advance(saga, state=SagaState.FAILED, step=STEP_REJECTED, note=reason)
        return "rejected"


def _reject(order: Order, *, reason: str) -> None:
    order.status = OrderStatus.REJECTED
    order.reason = reason[:255]
    order.save(update_fields=["status", "reason", "updated_at"])
    order_event_emit(order, "order.rejected", reason=order.reason)


def sagas_expire_overdue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Compensate every saga still waiting for portfolio_svc after its deadline; returns how many."""
    now = now or timezone.now()
    due = list(
        Saga.objects.filter(state=SagaState.RESERVING, deadline__lte=now)
        .order_by("deadline")
        .values_list("id", flat=True)[:limit]
    )
    return sum(saga_compensate(saga_id=saga_id, now=now) for saga_id in due)


def saga_compensate(*, saga_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Release whatever the reservation may have locked and reject the order (reason: timeout)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(saga_id=str(saga_id))
        if locked is None:
            return False
        saga, order = locked
        # A reply may have arrived between the scan and the lock: then there is nothing to compensate.
        if saga.state != SagaState.RESERVING or saga.deadline > now:
            return False
        funds_release_request(saga, reason=TIMEOUT_REASON)
        saga_advance(saga, state=SagaState.COMPENSATED, step=STEP_RELEASE_FUNDS, note="no reply before the deadline")
        _reject(order, reason=TIMEOUT_REASON)
        return True


def saga_retry_step(*, saga_id: uuid.UUID) -> str:
    """An operator's nudge for a stuck saga: send its current command again (both are idempotent downstream)."""
    with transaction.atomic():
        locked = _lock(saga_id=str(saga_id))
        if locked is None:
            raise ApplicationError("Saga does not exist.", code="not_found")
        saga, _order = locked
        if saga.state == SagaState.RESERVING:
            funds_reserve_request(saga, asset=saga.data["asset"], amount=Decimal(saga.data["amount"]))
            saga.deadline = saga_deadline()
            saga.save(update_fields=["deadline", "updated_at"])
            saga_note(saga, step=STEP_RESERVE_FUNDS, note="retried by an operator")
            return STEP_RESERVE_FUNDS
        if saga.state == SagaState.COMPENSATED:
            funds_release_request(saga, reason="retried by an operator")
            saga_note(saga, step=STEP_RELEASE_FUNDS, note="retried by an operator")
            return STEP_RELEASE_FUNDS
        raise ApplicationError(f"Saga is {saga.state}: it has no step to retry.", code="saga_finished")
