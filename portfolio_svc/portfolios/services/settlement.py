"""Settlement of fills (idempotent by fill id): pay from the reservation, credit what was bought, charge the fee.

Binance's rules: a BUY pays quote_qty of the quote asset and receives qty of the base asset, a SELL pays qty
of the base asset and receives quote_qty of the quote asset; the fee is charged in `fee_asset` (the received
asset, normally). When the order is done (FILLED, CANCELED, EXPIRED) what the fills left locked is released.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from common.exceptions import ApplicationError
from common.outbox.services import publish
from common.topics import Topic
from portfolios.amounts import ZERO, amount_str, exact_arithmetic
from portfolios.models import Asset, LedgerEntry, Reservation, Settlement
from portfolios.services.balances import balance_move, balances_lock
from portfolios.services.reservations import reservation_close

Kind = LedgerEntry.Kind
DONE_STATUSES = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})


class SettlementError(ApplicationError):
    """A fill this service cannot settle as sent (no reservation, assets that do not match it)."""

    code = "settlement_error"


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
    with transaction.atomic():
        # The reservation's lock serialises every fill of one order, so the fill-id check below cannot race.
        reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
        if reservation is None or reservation.portfolio_id is None:
            raise SettlementError(f"order {order_id} has no reservation to settle fill {fill_id} against")
        if reservation.user_id != user_id:
            raise SettlementError(f"fill {fill_id} names user {user_id}, the reservation is {reservation.user_id}")
        existing = Settlement.objects.filter(fill_id=fill_id).first()
        if existing is not None:
            return existing, False

        if side == "BUY":
            debit_asset, debit_amount, credit_asset, credit_amount = quote_asset, quote_qty, base_asset, qty
        else:
            debit_asset, debit_amount, credit_asset, credit_amount = base_asset, qty, quote_asset, quote_qty
        if reservation.asset != debit_asset:
            raise SettlementError(
                f"fill {fill_id} pays in {debit_asset}, the reservation of order {order_id} holds {reservation.asset}"
            )
        unknown = {debit_asset, credit_asset, fee_asset} - set(
            Asset.objects.filter(code__in=[debit_asset, credit_asset, fee_asset]).values_list("code", flat=True)
        )
        if unknown:
            raise SettlementError(f"fill {fill_id} names unknown assets: {', '.join(sorted(unknown))}")

        balances = balances_lock(portfolio=reservation.portfolio, assets=[debit_asset, credit_asset, fee_asset])
        with exact_arithmetic():
            from_locked = min(reservation.remaining, debit_amount)
            from_available = debit_amount - from_locked
            balance_move(balances[debit_asset], kind=Kind.FILL_DEBIT, amount=from_locked, reference=fill_id)
            # A MARKET buy whose buffer fell short pays the rest from what is available (or is refused).
            balance_move(
                balances[debit_asset],
                kind=Kind.FILL_DEBIT,
                amount=from_available,
                reference=fill_id,
                from_available=True,
            )
            if from_locked:
                reservation.consumed += from_locked
                reservation.save(update_fields=["consumed", "updated_at"])
            balance_move(balances[credit_asset], kind=Kind.FILL_CREDIT, amount=credit_amount, reference=fill_id)
            balance_move(balances[fee_asset], kind=Kind.FEE, amount=fee, reference=fill_id)

        done = order_status in DONE_STATUSES and reservation.state == Reservation.State.ACTIVE
        released = reservation.remaining if done else ZERO
        settlement = Settlement.objects.create(
            fill_id=fill_id,
            order_id=order_id,
            reservation=reservation,
            side=side,
            debit_asset=debit_asset,
            debit_amount=debit_amount,
            debit_from_available=from_available,
            credit_asset=credit_asset,
            credit_amount=credit_amount,
            fee_asset=fee_asset,
            fee=fee,
            released_amount=released,
            executed_at=executed_at,
        )
        publish(
            Topic.BALANCE_EVENTS,
            "balance.settled",
            str(user_id),
            {
                "fill_id": fill_id,
                "order_id": order_id,
                "user_id": str(user_id),
                "portfolio_id": str(reservation.portfolio_id),
                "debit_asset": debit_asset,
                "debit_amount": amount_str(debit_amount),
                "credit_asset": credit_asset,
                "credit_amount": amount_str(credit_amount),
                "fee_asset": fee_asset,
                "fee": amount_str(fee),
                "released_amount": amount_str(released),
            },
        )
        if done:
            # After balance.settled, so a reader of balance-events sees the fill before the leftover's release.
            reservation_close(reservation, balance=balances[debit_asset])
    return settlement, True
