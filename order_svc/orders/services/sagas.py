"""The saga's reactions: portfolio_svc's replies, deadlines that pass, and an operator's retry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from common.bulk import bulk_update
from common.events import Envelope
from common.exceptions import ApplicationError
from orders.models import Order, OrderStatus, Saga, SagaState
from orders.saga import (
    SAGA_FIELDS,
    STEP_ACCEPTED,
    STEP_REJECTED,
    STEP_RELEASE_FUNDS,
    STEP_RESERVE_FUNDS,
    saga_advance,
    saga_deadline,
    saga_note,
    saga_record,
    saga_transition,
)
from orders.services.events import (
    OrderMessage,
    funds_release_command,
    funds_release_request,
    funds_reserve_request,
    order_event_emit,
    order_events_emit,
    order_fact,
)

logger = logging.getLogger(__name__)

TIMEOUT_REASON = "timeout"


def _lock(*, saga_id: str) -> tuple[Saga, Order] | None:
    """Lock one saga's order, then the saga (the order first everywhere: cancel, sweeps and replies never deadlock)."""
    saga_uuid = _uuid(saga_id)
    found = None if saga_uuid is None else Saga.objects.filter(id=saga_uuid).values_list("order_id", flat=True).first()
    if found is None:
        return None
    order = Order.objects.select_for_update().select_related("symbol").get(id=found)
    saga = Saga.objects.select_for_update().get(id=saga_uuid)
    saga.order = order
    return saga, order


@dataclass(frozen=True)
class SagaReply:
    """portfolio_svc's answer to reserve_funds: the funds were reserved (asset, amount), or refused (reason)."""

    saga_id: str
    order_id: str
    reserved: bool
    asset: str = ""
    amount: Decimal | None = None
    reason: str = ""
    cause: Envelope | None = None  # the reply itself: what the saga publishes in answer continues it


# What a reply may change on its order (the fields are written for every order the batch changes).
_ORDER_REPLY_FIELDS = ["status", "accepted_at", "reason", "updated_at"]


def saga_replies_apply(*, replies: Sequence[SagaReply]) -> list[str]:
    """Apply portfolio_svc's replies in their order; returns each one's outcome.

    Set-based, so a Kafka batch costs the same statements whatever its size: the replies' orders locked, then
    their sagas (each by primary key, the order before its saga as everywhere), the replies folded in memory one
    after the other (two replies of one saga give what they gave one transaction each), then one UPDATE of the
    orders, one of the sagas, one INSERT of outbox rows and one of order events.

    Outcomes: accepted; duplicate (the saga had accepted already); released (a late reservation for a saga that
    gave up is released again); rejected; ignored (a refusal for a finished saga); unknown (no such saga, or not
    that order's: logged and ignored).
    """
    if not replies:
        return []
    with transaction.atomic(savepoint=False):  # inside a consumer's batch transaction: no savepoint
        orders, sagas = _lock_replied(replies)
        now = timezone.now()
        changed_orders: dict[uuid.UUID, Order] = {}
        changed_sagas: dict[uuid.UUID, Saga] = {}
        messages: list[OrderMessage] = []
        outcomes: list[str] = []
        for reply in replies:
            saga = sagas.get(_uuid(reply.saga_id))
            if saga is None or str(saga.order_id) != str(reply.order_id):
                logger.warning(
                    "reply for an unknown saga ignored", extra={"saga_id": reply.saga_id, "order_id": reply.order_id}
                )
                outcomes.append("unknown")
                continue
            order = orders[saga.order_id]
            outcome = (
                _reserved(reply, saga, order, now, messages)
                if reply.reserved
                else _refused(reply, saga, order, now, messages)
            )
            if outcome in ("accepted", "rejected"):
                changed_orders[order.id] = order
            if outcome in ("accepted", "rejected", "released"):
                changed_sagas[saga.id] = saga
            outcomes.append(outcome)
        if changed_orders:
            bulk_update(list(changed_orders.values()), _ORDER_REPLY_FIELDS)
        if changed_sagas:
            bulk_update(list(changed_sagas.values()), SAGA_FIELDS)
        order_events_emit(messages)
    return outcomes


def _reserved(reply: SagaReply, saga: Saga, order: Order, now: datetime, messages: list[OrderMessage]) -> str:
    """balance.reserved: accept the order, or release a reservation the saga no longer wants."""
    amount, asset = reply.amount, reply.asset
    if saga.state == SagaState.RESERVING:
        order.status = OrderStatus.NEW
        order.accepted_at = order.updated_at = now
        saga_transition(saga, state=SagaState.COMPLETED, step=STEP_ACCEPTED, note=f"reserved {amount} {asset}")
        messages.append(order_fact(order, "order.accepted", cause=reply.cause, status=OrderStatus.NEW))
        return "accepted"
    if saga.state == SagaState.COMPLETED:
        return "duplicate"
    # The saga gave up (timeout, cancel, refusal) before this reservation was made: undo it.
    saga_record(saga, step=STEP_RELEASE_FUNDS, note=f"late reservation of {amount} {asset}: released")
    messages.append(funds_release_command(saga, order=order, reason="late reservation", cause=reply.cause))
    return "released"


def _refused(reply: SagaReply, saga: Saga, order: Order, now: datetime, messages: list[OrderMessage]) -> str:
    """balance.reservation_failed: reject the order with portfolio_svc's reason."""
    if saga.state != SagaState.RESERVING:
        return "ignored"
    order.status = OrderStatus.REJECTED
    order.reason = reply.reason[:255]
    order.updated_at = now
    messages.append(order_fact(order, "order.rejected", cause=reply.cause, reason=order.reason))
    saga_transition(saga, state=SagaState.FAILED, step=STEP_REJECTED, note=reply.reason)
    return "rejected"


def _lock_replied(replies: Sequence[SagaReply]) -> tuple[dict[uuid.UUID, Order], dict[uuid.UUID, Saga]]:
    """Lock the replies' orders, then their sagas: two statements, each in primary-key order (no deadlock)."""
    order_ids = {u for r in replies if (u := _uuid(r.order_id)) is not None}
    saga_ids = {u for r in replies if (u := _uuid(r.saga_id)) is not None}
    orders = {o.id: o for o in Order.objects.select_for_update().filter(id__in=order_ids).order_by("id")}
    sagas = {s.id: s for s in Saga.objects.select_for_update().filter(id__in=saga_ids).order_by("id")}
    return orders, sagas


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def saga_reservation_confirm(*, saga_id: str, order_id: str, asset: str, amount: Decimal) -> str:
    """balance.reserved for one saga (saga_replies_apply of one reply). Returns the outcome."""
    reply = SagaReply(saga_id=saga_id, order_id=order_id, reserved=True, asset=asset, amount=amount)
    return saga_replies_apply(replies=[reply])[0]


def saga_reservation_fail(*, saga_id: str, order_id: str, reason: str) -> str:
    """balance.reservation_failed for one saga (saga_replies_apply of one reply). Returns the outcome."""
    return saga_replies_apply(replies=[SagaReply(saga_id=saga_id, order_id=order_id, reserved=False, reason=reason)])[0]


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
