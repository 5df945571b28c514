"""THE domain module that changes balances: rows are locked (select_for_update) and every movement is ledgered.

Nothing else in the service writes a Balance: reservations, settlement and credits call `balance_move()` on
rows they locked with `balances_lock()`, inside their own transaction, so the ledger entry and the balance
change commit together and reconciliation is a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from common.exceptions import ApplicationError, NotFound
from common.outbox.services import publish
from common.topics import Topic
from portfolios.amounts import ZERO, amount_str, exact_arithmetic, parse_amount, quantize
from portfolios.models import Asset, Balance, LedgerEntry, Portfolio

Kind = LedgerEntry.Kind


class InsufficientFunds(ApplicationError):
    code = "insufficient_funds"


class UnknownAsset(ApplicationError):
    code = "unknown_asset"


def asset_get(code: str) -> Asset:
    asset = Asset.objects.filter(code=code).first()
    if asset is None:
        raise UnknownAsset(f"unknown asset {code!r}", details={"asset": code})
    return asset


def balances_lock(*, portfolio: Portfolio, assets: Iterable[str], create: bool = True) -> dict[str, Balance]:
    """Lock the portfolio's balances of these assets (creating missing ones unless create=False).

    Rows are locked in asset order, so two transactions locking overlapping sets never deadlock.
    """
    codes = sorted(set(assets))
    if create:
        # ON CONFLICT DO NOTHING: a concurrent creator of the same row wins, and we lock its row below.
        Balance.objects.bulk_create([Balance(portfolio=portfolio, asset_id=c) for c in codes], ignore_conflicts=True)
    rows = Balance.objects.select_for_update().filter(portfolio=portfolio, asset_id__in=codes).order_by("asset_id")
    locked = {}
    for balance in rows:
        balance.portfolio = portfolio  # the ledger needs its user; no query per row
        locked[balance.asset_id] = balance
    return locked


# kind -> (sign on available, sign on locked); FILL_DEBIT takes from locked unless told otherwise.
_DELTAS = {
    Kind.CREDIT: (1, 0),
    Kind.RESERVE: (-1, 1),
    Kind.RELEASE: (1, -1),
    Kind.FILL_DEBIT: (0, -1),
    Kind.FILL_CREDIT: (1, 0),
    Kind.FEE: (-1, 0),
}


def balance_move(
    balance: Balance, *, kind: str, amount: Decimal, reference: str, from_available: bool = False
) -> LedgerEntry | None:
    """Apply one movement to a balance locked by balances_lock() and ledger it; raises InsufficientFunds.

    The caller holds the transaction. `from_available` makes a FILL_DEBIT take from available (the part of
    a fill its reservation did not cover). A zero amount changes nothing and writes nothing.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("balance_move() must run inside the transaction that locked the balance")
    if amount < 0:
        raise ValueError(f"a movement amount is never negative (got {amount})")
    if amount == 0:
        return None
    on_available, on_locked = (-1, 0) if kind == Kind.FILL_DEBIT and from_available else _DELTAS[kind]
    with exact_arithmetic():
        available_delta, locked_delta = amount * on_available, amount * on_locked
        available, locked = balance.available + available_delta, balance.locked + locked_delta
    if available < 0 or locked < 0:
        raise InsufficientFunds(
            f"{kind} of {amount_str(amount)} {balance.asset_id} exceeds the balance",
            details={
                "asset": balance.asset_id,
                "available": amount_str(balance.available),
                "locked": amount_str(balance.locked),
            },
        )
    balance.available, balance.locked = available, locked
    balance.save(update_fields=["available", "locked", "updated_at"])
    return LedgerEntry.objects.create(
        user_id=balance.portfolio.user_id,
        portfolio_id=balance.portfolio_id,
        asset_id=balance.asset_id,
        kind=kind,
        amount=amount,
        available_delta=available_delta,
        locked_delta=locked_delta,
        reference=reference[:255],
    )


def balance_credit(*, portfolio_id: uuid.UUID, asset: str, amount: Decimal | str, reason: str) -> Balance:
    """Credit paper funds to a portfolio (quantised to the asset's precision) and publish balance.credited."""
    asset_row = asset_get(asset)
    amount = quantize(parse_amount(amount), asset_row.precision)
    if amount <= ZERO:
        raise ApplicationError(f"a credit must be positive (got {amount_str(amount)})", code="invalid_amount")
    with transaction.atomic():
        portfolio = Portfolio.objects.filter(id=portfolio_id).first()
        if portfolio is None:
            raise NotFound(f"portfolio {portfolio_id} does not exist")
        balance = balances_lock(portfolio=portfolio, assets=[asset_row.code])[asset_row.code]
        balance_move(balance, kind=Kind.CREDIT, amount=amount, reference=reason)
        publish(
            Topic.BALANCE_EVENTS,
            "balance.credited",
            str(portfolio.user_id),
            {
                "user_id": str(portfolio.user_id),
                "portfolio_id": str(portfolio.id),
                "asset": asset_row.code,
                "amount": amount_str(amount, asset_row.precision),
                "reason": reason,
            },
        )
    return balance
