"""Reservations (funds locked for an order, keyed by order id): reserve, release, close; answers on balance-events."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum

from django.db import transaction

from common.outbox.services import publish
from common.topics import Topic
from portfolios.amounts import ZERO, InvalidAmount, amount_str, exact_arithmetic, parse_amount
from portfolios.models import Asset, Balance, LedgerEntry, Portfolio, Reservation
from portfolios.services.balances import balance_move, balances_lock

State = Reservation.State

# What balance.released names as the asset of a release that found nothing to release.
NO_ASSET = "NONE"


class FailureReason(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNKNOWN_PORTFOLIO = "unknown_portfolio"
    UNKNOWN_ASSET = "unknown_asset"
    INVALID_AMOUNT = "invalid_amount"
    ALREADY_RELEASED = "already_released"


def reservation_reserve(
    *, order_id: str, saga_id: str, user_id: uuid.UUID, asset: str, amount: Decimal | str
) -> Reservation:
    """Move `amount` of `asset` from available to locked in the user's default portfolio, for one order.

    Answers balance.reserved, or balance.reservation_failed with a reason (the failure is recorded too, so a
    repeated command gets the same answer and changes nothing).
    """
    with transaction.atomic():
        reservation = Reservation.objects.filter(order_id=order_id).first()
        if reservation is None:
            # Two commands for one order racing here: the unique order_id makes the second fail and retry,
            # and its retry answers from the row the first one wrote.
            reservation = _reserve(order_id=order_id, saga_id=saga_id, user_id=user_id, asset=asset, amount=amount)
        _answer_reserve(reservation, saga_id=saga_id, requested=str(amount))
    return reservation


def _reserve(*, order_id: str, saga_id: str, user_id: uuid.UUID, asset: str, amount: Decimal | str) -> Reservation:
    row = Reservation(order_id=order_id, saga_id=saga_id, user_id=user_id, asset=asset[:16], amount=ZERO)
    try:
        row.amount = parse_amount(amount)
    except InvalidAmount:
        return _failed(row, FailureReason.INVALID_AMOUNT)
    portfolio = Portfolio.objects.filter(user_id=user_id, is_default=True).first()
    if portfolio is None:
        return _failed(row, FailureReason.UNKNOWN_PORTFOLIO)
    row.portfolio = portfolio
    if row.amount <= ZERO:
        return _failed(row, FailureReason.INVALID_AMOUNT)
    if not Asset.objects.filter(code=asset).exists():
        return _failed(row, FailureReason.UNKNOWN_ASSET)
    # No balance row is created for a reservation: an asset never held simply has no funds.
    balance = balances_lock(portfolio=portfolio, assets=[asset], create=False).get(asset)
    if balance is None or balance.available < row.amount:
        return _failed(row, FailureReason.INSUFFICIENT_FUNDS)
    row.state = State.ACTIVE
    row.save()
    balance_move(balance, kind=LedgerEntry.Kind.RESERVE, amount=row.amount, reference=order_id)
    return row


def _failed(row: Reservation, reason: FailureReason) -> Reservation:
    row.state, row.reason = State.FAILED, reason.value
    row.save()
    return row


def _answer_reserve(reservation: Reservation, *, saga_id: str, requested: str) -> None:
    base = {"order_id": reservation.order_id, "saga_id": saga_id, "user_id": str(reservation.user_id)}
    if reservation.state == State.FAILED or reservation.portfolio_id is None:
        reason = reservation.reason if reservation.state == State.FAILED else FailureReason.ALREADY_RELEASED.value
        data = {**base, "asset": reservation.asset or NO_ASSET, "amount": requested, "reason": reason}
        publish(Topic.BALANCE_EVENTS, "balance.reservation_failed", str(reservation.user_id), data)
        return
    data = {
        **base,
        "portfolio_id": str(reservation.portfolio_id),
        "asset": reservation.asset,
        "amount": amount_str(reservation.amount),
    }
    publish(Topic.BALANCE_EVENTS, "balance.reserved", str(reservation.user_id), data)


def reservation_release(*, order_id: str, saga_id: str, user_id: uuid.UUID, reason: str = "") -> Reservation:
    """Release what is still locked for an order and answer balance.released (idempotent).

    An unknown order's release answers success and moves nothing; it leaves a released, empty reservation
    behind, so a reserve command arriving after it (a saga that already gave up) locks nothing.
    """
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
        if reservation is None:
            reservation = Reservation.objects.create(
                order_id=order_id,
                saga_id=saga_id,
                user_id=user_id,
                amount=ZERO,
                state=State.RELEASED,
                reason=(reason or "released before any reservation")[:255],
            )
        reservation_close(reservation, saga_id=saga_id)
    return reservation


def reservation_release_for_order(*, order_id: str) -> Reservation | None:
    """The order is done (cancelled or expired): release what is still locked for it, if anything."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
        if reservation is None or reservation.state != State.ACTIVE:
            return reservation
        reservation_close(reservation)
    return reservation


def reservation_close(
    reservation: Reservation, *, saga_id: str | None = None, balance: Balance | None = None
) -> Decimal:
    """Release what remains of a reservation (locked by the caller) and publish balance.released; returns it.

    An already closed reservation releases nothing and answers with 0. Runs in the caller's transaction.
    """
    remaining = reservation.remaining
    if reservation.state == State.ACTIVE:
        if remaining > ZERO:
            if balance is None:
                balance = balances_lock(portfolio=reservation.portfolio, assets=[reservation.asset])[reservation.asset]
            balance_move(balance, kind=LedgerEntry.Kind.RELEASE, amount=remaining, reference=reservation.order_id)
        with exact_arithmetic():
            reservation.released += remaining
        reservation.state = State.RELEASED if reservation.released > ZERO else State.CONSUMED
        reservation.save(update_fields=["released", "state", "updated_at"])
    publish(
        Topic.BALANCE_EVENTS,
        "balance.released",
        str(reservation.user_id),
        {
            "order_id": reservation.order_id,
            "saga_id": saga_id or reservation.saga_id,
            "user_id": str(reservation.user_id),
            "asset": reservation.asset or NO_ASSET,
            "amount": amount_str(remaining),
        },
    )
    return remaining
