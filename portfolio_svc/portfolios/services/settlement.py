"""Settlement of fills (idempotent by fill id): pay from the reservation, credit what was bought, charge the fee.

Binance's rules: a BUY pays quote_qty of the quote asset and receives qty of the base asset, a SELL pays qty
of the base asset and receives quote_qty of the quote asset; the fee is charged in `fee_asset` (the received
asset, normally). When the order is done (FILLED, CANCELED, EXPIRED) what the fills left locked is released.

`settlements_apply()` handles a whole batch of order-events (fills, and orders closed without a fill) set-based:
one locking read of the batch's reservations, one read of the fills already settled, one locking read of the
balances; every event is applied in order in memory, and the effects are written with one statement each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from common.events import Envelope
from common.exceptions import ApplicationError
from common.outbox.services import Outgoing, publish_many
from common.topics import Topic
from portfolios.amounts import ZERO, amount_str, exact_arithmetic
from portfolios.models import LedgerEntry, Reservation, Settlement
from portfolios.services.balances import BalanceBook, BalanceKey, InsufficientFunds, assets_known, balances_lock
from portfolios.services.reservations import reservation_close, reservations_lock, reservations_write

Kind = LedgerEntry.Kind
State = Reservation.State
DONE_STATUSES = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})


class SettlementError(ApplicationError):
    """A fill this service cannot settle as sent (no reservation, assets that do not match it).

    `details["fill_id"]` names the fill, as it does on an InsufficientFunds raised while settling one.
    """

    code = "settlement_error"


@dataclass(frozen=True)
class FillSettle:
    """order.filled: one fill of an order, to settle against the order's reservation."""

    fill_id: str
    order_id: str
    user_id: uuid.UUID
    side: str
    base_asset: str
    quote_asset: str
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    order_status: str
    executed_at: datetime
    cause: Envelope | None = None  # the event this answers (None: the ambient cause)

    def legs(self) -> tuple[str, Decimal, str, Decimal]:
        """(debit asset, debit amount, credit asset, credit amount)."""
        if self.side == "BUY":
            return self.quote_asset, self.quote_qty, self.base_asset, self.qty
        return self.base_asset, self.qty, self.quote_asset, self.quote_qty


@dataclass(frozen=True)
class OrderClose:
    """order.cancelled (or expired): the order is done; release what is still locked for it."""

    order_id: str
    cause: Envelope | None = None


OrderEvent = FillSettle | OrderClose


def fill_settle(
    *,
    fill_id: str,
    order_id: str,
    user_id: uuid.UUID,
    side: str,
    base_asset: str,
    quote_asset: str,
    qty: Decimal,
    quote_qty: Decimal,
    fee: Decimal,
    fee_asset: str,
    order_status: str,
    executed_at: datetime,
) -> tuple[Settlement, bool]:
    """Settle one fill against its order's reservation; returns (settlement, created).

    A fill already settled returns its settlement and changes nothing. Raises SettlementError, or
    InsufficientFunds when a fill costs more than its reservation and the available balance together.
    """
    event = FillSettle(
        fill_id=fill_id,
        order_id=order_id,
        user_id=user_id,
        side=side,
        base_asset=base_asset,
        quote_asset=quote_asset,
        qty=qty,
        quote_qty=quote_qty,
        fee=fee,
        fee_asset=fee_asset,
        order_status=order_status,
        executed_at=executed_at,
    )
    with transaction.atomic():
        return settlements_apply([event])[0]


def reservation_release_for_order(*, order_id: str) -> Reservation | None:
    """The order is done (cancelled or expired): release what is still locked for it, if anything."""
    with transaction.atomic():
        return settlements_apply([OrderClose(order_id=order_id)])[0]


def settlements_apply(events: Sequence[OrderEvent]) -> list:
    """Apply fills and order closes in order, in the caller's transaction, in a constant number of statements.

    Returns, per event, (settlement, created) for a fill and the reservation (or None) for a close: exactly
    what fill_settle() and reservation_release_for_order() one after the other return. A fill id already
    settled, or seen earlier in the batch, settles nothing. Raises like fill_settle(): nothing is written
    then, and the caller's transaction is to be rolled back.
    """
    if not events:
        return []
    reservations = reservations_lock(e.order_id for e in events)
    fills = [e for e in events if isinstance(e, FillSettle)]
    settled: dict[str, Settlement] = {}
    if fills:
        # After the reservations' lock, which serialises every fill of one order: this read cannot race.
        settled = {s.fill_id: s for s in Settlement.objects.filter(fill_id__in={f.fill_id for f in fills}).order_by()}
    known = assets_known(a for f in fills for a in (f.base_asset, f.quote_asset, f.fee_asset))

    # The balances the fold may move: a fill's three (created where missing, as a first purchase of an asset
    # needs), and what a closed order gives back to. Fills that will be refused or are settled already
    # create nothing.
    keys: set[BalanceKey] = set()
    create: set[BalanceKey] = set()
    for event in events:
        reservation = reservations.get(event.order_id)
        if reservation is None or reservation.portfolio_id is None:
            continue
        if isinstance(event, OrderClose):
            if reservation.state == State.ACTIVE:
                keys.add((reservation.portfolio_id, reservation.asset))
            continue
        debit_asset, _, credit_asset, _ = event.legs()
        assets = {debit_asset, credit_asset, event.fee_asset}
        if (
            event.fill_id not in settled
            and reservation.user_id == event.user_id
            and reservation.asset == debit_asset
            and assets <= known
        ):
            create |= {(reservation.portfolio_id, asset) for asset in assets}
    book = balances_lock(keys, create=create)

    changed: dict[int, Reservation] = {}
    new_settlements: list[Settlement] = []
    answers: list[Outgoing] = []
    results: list = []
    for event in events:
        reservation = reservations.get(event.order_id)
        if isinstance(event, OrderClose):
            if reservation is not None and reservation.state == State.ACTIVE:
                answers.append(reservation_close(reservation, book=book, changed=changed, cause=event.cause))
            results.append(reservation)
            continue
        _check_reservation(event, reservation)
        existing = settled.get(event.fill_id)
        if existing is not None:
            results.append((existing, False))
            continue
        _check_assets(event, reservation, known)
        try:
            settlement = _settle(event, reservation, book=book, changed=changed, answers=answers)
        except InsufficientFunds as exc:
            exc.details["fill_id"] = event.fill_id
            raise
        settled[event.fill_id] = settlement
        new_settlements.append(settlement)
        results.append((settlement, True))

    book.write()
    reservations_write(created=(), changed=changed.values())
    if new_settlements:
        Settlement.objects.bulk_create(new_settlements)
    publish_many(answers)
    return results


def _check_reservation(fill: FillSettle, reservation: Reservation | None) -> None:
    """Refuse a fill of an order without a reservation, or that names another user than its reservation."""
    details = {"fill_id": fill.fill_id}
    if reservation is None or reservation.portfolio_id is None:
        raise SettlementError(
            f"order {fill.order_id} has no reservation to settle fill {fill.fill_id} against", details=details
        )
    if reservation.user_id != fill.user_id:
        raise SettlementError(
            f"fill {fill.fill_id} names user {fill.user_id}, the reservation is {reservation.user_id}",
            details=details,
        )


def _check_assets(fill: FillSettle, reservation: Reservation, known: frozenset[str]) -> None:
    """Refuse a fill that pays in another asset than its reservation holds, or names assets there are not."""
    details = {"fill_id": fill.fill_id}
    debit_asset, _, credit_asset, _ = fill.legs()
    if reservation.asset != debit_asset:
        raise SettlementError(
            f"fill {fill.fill_id} pays in {debit_asset}, the reservation of order {fill.order_id} holds "
            f"{reservation.asset}",
            details=details,
        )
    unknown = {debit_asset, credit_asset, fill.fee_asset} - known
    if unknown:
        raise SettlementError(
            f"fill {fill.fill_id} names unknown assets: {', '.join(sorted(unknown))}", details=details
        )


def _settle(
    fill: FillSettle,
    reservation: Reservation,
    *,
    book: BalanceBook,
    changed: dict[int, Reservation],
    answers: list[Outgoing],
) -> Settlement:
    """Move the fill's funds in `book`, consume the reservation, and queue balance.settled (and .released)."""
    debit_asset, debit_amount, credit_asset, credit_amount = fill.legs()
    portfolio_id = reservation.portfolio_id
    with exact_arithmetic():
        from_locked = min(reservation.remaining, debit_amount)
        from_available = debit_amount - from_locked
        book.move(portfolio_id, debit_asset, kind=Kind.FILL_DEBIT, amount=from_locked, reference=fill.fill_id)
        # A MARKET buy whose buffer fell short pays the rest from what is available (or is refused).
        book.move(
            portfolio_id,
            debit_asset,
            kind=Kind.FILL_DEBIT,
            amount=from_available,
            reference=fill.fill_id,
            from_available=True,
        )
        if from_locked:
            reservation.consumed += from_locked
            changed[reservation.pk] = reservation
        book.move(portfolio_id, credit_asset, kind=Kind.FILL_CREDIT, amount=credit_amount, reference=fill.fill_id)
        book.move(portfolio_id, fill.fee_asset, kind=Kind.FEE, amount=fill.fee, reference=fill.fill_id)

    done = fill.order_status in DONE_STATUSES and reservation.state == State.ACTIVE
    released = reservation.remaining if done else ZERO
    settlement = Settlement(
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        reservation=reservation,
        side=fill.side,
        debit_asset=debit_asset,
        debit_amount=debit_amount,
        debit_from_available=from_available,
        credit_asset=credit_asset,
        credit_amount=credit_amount,
        fee_asset=fill.fee_asset,
        fee=fill.fee,
        released_amount=released,
        executed_at=fill.executed_at,
    )
    answers.append(
        Outgoing(
            Topic.BALANCE_EVENTS,
            "balance.settled",
            str(fill.user_id),
            {
                "fill_id": fill.fill_id,
                "order_id": fill.order_id,
                "user_id": str(fill.user_id),
                "portfolio_id": str(portfolio_id),
                "debit_asset": debit_asset,
                "debit_amount": amount_str(debit_amount),
                "credit_asset": credit_asset,
                "credit_amount": amount_str(credit_amount),
                "fee_asset": fill.fee_asset,
                "fee": amount_str(fill.fee),
                "released_amount": amount_str(released),
            },
            cause=fill.cause,
        )
    )
    if done:
        # After balance.settled, so a reader of balance-events sees the fill before the leftover's release.
        answers.append(reservation_close(reservation, book=book, changed=changed, cause=fill.cause))
    return settlement
