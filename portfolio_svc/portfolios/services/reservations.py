"""Reservations (funds locked for an order, keyed by order id): reserve, release, close; answers on balance-events.

`reservations_apply()` handles a whole batch of portfolio-commands set-based: one locking read of the
batch's reservations, one of its users' default portfolios, one of the balances it needs; every command is
then applied in order in memory (a user's second reservation sees what the first one took; an order reserved
and released in one batch ends released), and the effects are written with one statement each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db import transaction

from common.bulk import bulk_update
from common.events import Envelope
from common.outbox.services import Outgoing, publish_many
from common.topics import Topic
from portfolios.amounts import ZERO, InvalidAmount, amount_str, exact_arithmetic, parse_amount
from portfolios.models import LedgerEntry, Portfolio, Reservation
from portfolios.selectors import portfolio_defaults
from portfolios.services.balances import BalanceBook, BalanceKey, assets_known, balances_lock

State = Reservation.State

# What balance.released names as the asset of a release that found nothing to release.
NO_ASSET = "NONE"
ASSET_MAX_LENGTH = Reservation._meta.get_field("asset").max_length


class FailureReason(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNKNOWN_PORTFOLIO = "unknown_portfolio"
    UNKNOWN_ASSET = "unknown_asset"
    INVALID_AMOUNT = "invalid_amount"
    ALREADY_RELEASED = "already_released"


@dataclass(frozen=True)
class ReserveFunds:
    """portfolio.reserve_funds: lock `amount` of `asset` in the user's default portfolio for one order."""

    order_id: str
    saga_id: str
    user_id: uuid.UUID
    asset: str
    amount: Decimal | str
    cause: Envelope | None = None  # the command this answers (None: the ambient cause)


@dataclass(frozen=True)
class ReleaseFunds:
    """portfolio.release_funds: give back what is still locked for one order."""

    order_id: str
    saga_id: str
    user_id: uuid.UUID
    reason: str = ""
    cause: Envelope | None = None


Command = ReserveFunds | ReleaseFunds


def reservation_reserve(
    *, order_id: str, saga_id: str, user_id: uuid.UUID, asset: str, amount: Decimal | str
) -> Reservation:
    """Move `amount` of `asset` from available to locked in the user's default portfolio, for one order.

    Answers balance.reserved, or balance.reservation_failed with a reason (the failure is recorded too, so a
    repeated command gets the same answer and changes nothing).
    """
    command = ReserveFunds(order_id=order_id, saga_id=saga_id, user_id=user_id, asset=asset, amount=amount)
    with transaction.atomic():
        return reservations_apply([command])[0]


def reservation_release(*, order_id: str, saga_id: str, user_id: uuid.UUID, reason: str = "") -> Reservation:
    """Release what is still locked for an order and answer balance.released (idempotent).

    An unknown order's release answers success and moves nothing; it leaves a released, empty reservation
    behind, so a reserve command arriving after it (a saga that already gave up) locks nothing.
    """
    command = ReleaseFunds(order_id=order_id, saga_id=saga_id, user_id=user_id, reason=reason)
    with transaction.atomic():
        return reservations_apply([command])[0]


def reservations_apply(commands: Sequence[Command]) -> list[Reservation]:
    """Apply reserve and release commands in order, in the caller's transaction; returns each one's reservation.

    Exactly what handling them one after the other does (see reservation_reserve and reservation_release),
    in a constant number of statements: lock the reservations, read the default portfolios, lock the
    balances; fold; insert the new reservations, update the changed ones, write the balances and their
    ledger entries, publish every answer with one insert.
    """
    if not commands:
        return []
    reservations = reservations_lock(c.order_id for c in commands)
    reserving = [c for c in commands if isinstance(c, ReserveFunds) and c.order_id not in reservations]
    portfolios = portfolio_defaults(user_ids={c.user_id for c in reserving}) if reserving else {}
    known = assets_known(c.asset for c in reserving)

    # The balances the fold may move: what a new reservation takes from, what a released one gives back to.
    # No balance row is created: an asset never held has no funds to reserve, and an open reservation's row
    # exists since it was reserved from it.
    keys: set[BalanceKey] = set()
    for command in reserving:
        portfolio = portfolios.get(command.user_id)
        if portfolio is not None and command.asset in known:
            keys.add((portfolio.id, command.asset))
    for command in commands:
        reservation = reservations.get(command.order_id)
        if isinstance(command, ReleaseFunds) and reservation is not None and reservation.state == State.ACTIVE:
            keys.add((reservation.portfolio_id, reservation.asset))
    book = balances_lock(keys)

    created: list[Reservation] = []
    changed: dict[int, Reservation] = {}
    answers: list[Outgoing] = []
    results: list[Reservation] = []
    for command in commands:
        reservation = reservations.get(command.order_id)
        if reservation is None:
            if isinstance(command, ReserveFunds):
                reservation = _reserve(command, portfolio=portfolios.get(command.user_id), known=known, book=book)
            else:
                reservation = Reservation(
                    order_id=command.order_id,
                    saga_id=command.saga_id,
                    user_id=command.user_id,
                    amount=ZERO,
                    state=State.RELEASED,
                    reason=(command.reason or "released before any reservation")[:255],
                )
            reservations[command.order_id] = reservation
            created.append(reservation)  # inserted once, in the state the whole batch leaves it in
        if isinstance(command, ReserveFunds):
            answers.append(_reserve_answer(reservation, command))
        else:
            answers.append(
                reservation_close(reservation, book=book, changed=changed, saga_id=command.saga_id, cause=command.cause)
            )
        results.append(reservation)

    book.write()
    reservations_write(created=created, changed=changed.values())
    publish_many(answers)
    return results


def reservations_lock(order_ids: Iterable[str]) -> dict[str, Reservation]:
    """The reservations of these orders, locked (one SELECT ... FOR UPDATE, in id order), by order id."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    rows = Reservation.objects.select_for_update().filter(order_id__in=ids).order_by("pk")
    return {r.order_id: r for r in rows}


def reservations_write(*, created: Sequence[Reservation], changed: Iterable[Reservation]) -> None:
    """One INSERT of the batch's new reservations (in their final state) and one UPDATE of the changed ones."""
    if created:
        # Another transaction creating a reservation of the same order (two commands of one order racing,
        # which keying commands by user rules out) makes this fail on the unique order id: the batch is then
        # handled again one command at a time, and the retry answers from the row the other one wrote.
        Reservation.objects.bulk_create(created)
    rows = sorted((r for r in changed if r.pk is not None), key=lambda r: r.pk)
    bulk_update(rows, ["consumed", "released", "state", "updated_at"])


def _reserve(
    command: ReserveFunds, *, portfolio: Portfolio | None, known: frozenset[str], book: BalanceBook
) -> Reservation:
    """The reservation a first reserve command of an order makes (not saved yet): ACTIVE, or FAILED with why."""
    row = Reservation(
        order_id=command.order_id,
        saga_id=command.saga_id,
        user_id=command.user_id,
        asset=command.asset[:ASSET_MAX_LENGTH],
        amount=ZERO,
    )
    try:
        row.amount = parse_amount(command.amount)
    except InvalidAmount:
        return _failed(row, FailureReason.INVALID_AMOUNT)
    if portfolio is None:
        return _failed(row, FailureReason.UNKNOWN_PORTFOLIO)
    row.portfolio = portfolio
    if row.amount <= ZERO:
        return _failed(row, FailureReason.INVALID_AMOUNT)
    if command.asset not in known:
        return _failed(row, FailureReason.UNKNOWN_ASSET)
    balance = book.get(portfolio.id, command.asset)
    if balance is None or balance.available < row.amount:
        return _failed(row, FailureReason.INSUFFICIENT_FUNDS)
    row.state = State.ACTIVE
    book.move(portfolio.id, command.asset, kind=LedgerEntry.Kind.RESERVE, amount=row.amount, reference=row.order_id)
    return row


def _failed(row: Reservation, reason: FailureReason) -> Reservation:
    row.state, row.reason = State.FAILED, reason.value
    return row


def _reserve_answer(reservation: Reservation, command: ReserveFunds) -> Outgoing:
    base = {"order_id": reservation.order_id, "saga_id": command.saga_id, "user_id": str(reservation.user_id)}
    if reservation.state == State.FAILED or reservation.portfolio_id is None:
        reason = reservation.reason if reservation.state == State.FAILED else FailureReason.ALREADY_RELEASED.value
        data = {**base, "asset": reservation.asset or NO_ASSET, "amount": str(command.amount), "reason": reason}
        return Outgoing(
            Topic.BALANCE_EVENTS, "balance.reservation_failed", str(reservation.user_id), data, cause=command.cause
        )
    data = {
        **base,
        "portfolio_id": str(reservation.portfolio_id),
        "asset": reservation.asset,
        "amount": amount_str(reservation.amount),
    }
    return Outgoing(Topic.BALANCE_EVENTS, "balance.reserved", str(reservation.user_id), data, cause=command.cause)


def reservation_close(
    reservation: Reservation,
    *,
    book: BalanceBook,
    changed: dict[int, Reservation],
    saga_id: str | None = None,
    cause: Envelope | None = None,
) -> Outgoing:
    """Release what remains of a reservation (locked by the caller) in memory; returns its balance.released.

    The balance movement goes to `book`; a reservation that was already stored and changes is put in
    `changed` (by id) for reservations_write(). An already closed reservation releases nothing and answers
    with 0.
    """
    remaining = reservation.remaining
    if reservation.state == State.ACTIVE:
        book.move(
            reservation.portfolio_id,
            reservation.asset,
            kind=LedgerEntry.Kind.RELEASE,
            amount=remaining,
            reference=reservation.order_id,
        )
        with exact_arithmetic():
            reservation.released += remaining
        reservation.state = State.RELEASED if reservation.released > ZERO else State.CONSUMED
        if reservation.pk is not None:
            changed[reservation.pk] = reservation
    return Outgoing(
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
        cause=cause,
    )
