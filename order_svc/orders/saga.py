"""The order saga: its steps, the state transitions it allows, and its persisted history.

place_order:  reserve_funds --balance.reserved--> accepted (COMPLETED)
                            --balance.reservation_failed--> rejected (FAILED)
                            --deadline passed / cancelled--> release_funds (COMPENSATED)
A reply that reaches a finished saga changes nothing, except a late balance.reserved for a COMPENSATED
saga: that reservation is released again (release is idempotent on portfolio_svc's side).

These helpers only change the saga row (saga_transition and saga_record in memory, for a batch that writes all its
sagas with one UPDATE; saga_advance and saga_note save it); the services that call them hold the transaction and
publish.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from orders.models import Order, Saga, SagaState

PLACE_ORDER = "place_order"

STEP_RESERVE_FUNDS = "reserve_funds"
STEP_ACCEPTED = "accepted"
STEP_REJECTED = "rejected"
STEP_RELEASE_FUNDS = "release_funds"

TRANSITIONS: dict[str, set[str]] = {
    SagaState.RESERVING: {SagaState.COMPLETED, SagaState.FAILED, SagaState.COMPENSATED},
    SagaState.COMPLETED: set(),
    SagaState.FAILED: set(),
    SagaState.COMPENSATED: set(),
}


class SagaTransitionError(RuntimeError):
    """A transition the saga does not allow: a bug, never a business outcome."""


def saga_deadline():
    return timezone.now() + timedelta(seconds=settings.ORDER_SAGA_TIMEOUT_S)


def _entry(step: str, state: str, note: str = "") -> dict[str, str]:
    return {"at": timezone.now().isoformat(), "step": step, "state": state, "note": note}


def saga_begin(*, order: Order, asset: str, amount: Decimal) -> Saga:
    return Saga.objects.create(
        type=PLACE_ORDER,
        order=order,
        state=SagaState.RESERVING,
        current_step=STEP_RESERVE_FUNDS,
        data={"asset": asset, "amount": format(amount, "f"), "user_id": str(order.user_id)},
        history=[_entry(STEP_RESERVE_FUNDS, SagaState.RESERVING, f"reserve {amount} {asset}")],
        deadline=saga_deadline(),
    )


SAGA_FIELDS = ["state", "current_step", "data", "history", "deadline", "updated_at"]


def saga_transition(saga: Saga, *, state: str, step: str, note: str = "", **data: str) -> None:
    """Move a locked saga to its next state and record it, in memory (the caller writes it, e.g. with bulk_update).

    The waiting deadline is cleared when it ends.
    """
    if state != saga.state and state not in TRANSITIONS[saga.state]:
        raise SagaTransitionError(f"saga {saga.id}: {saga.state} -> {state} is not allowed")
    saga.state = state
    saga.current_step = step
    saga.data = {**saga.data, **data}
    saga.history = [*saga.history, _entry(step, state, note)]
    if state != SagaState.RESERVING:
        saga.deadline = None
    saga.updated_at = timezone.now()


def saga_record(saga: Saga, *, step: str, note: str) -> None:
    """Record something that happened to a saga without changing its state (a late reply, a retry), in memory."""
    saga.history = [*saga.history, _entry(step, saga.state, note)]
    saga.updated_at = timezone.now()


def saga_advance(saga: Saga, *, state: str, step: str, note: str = "", **data: str) -> None:
    """saga_transition, saved."""
    saga_transition(saga, state=state, step=step, note=note, **data)
    saga.save(update_fields=SAGA_FIELDS)


def saga_note(saga: Saga, *, step: str, note: str) -> None:
    """saga_record, saved."""
    saga_record(saga, step=step, note=note)
    saga.save(update_fields=["history", "updated_at"])
