"""THE domain module that changes balances: rows are locked (FOR UPDATE) and every movement is ledgered.

Nothing else in the service writes a Balance. A service locks every balance its batch needs with ONE
`balances_lock()` (one ordered SELECT ... FOR UPDATE), applies the movements in memory to the BalanceBook it
gets back (`book.move()`, which refuses to take a balance below zero, so a later movement of the batch sees
what an earlier one took), and writes them with `book.write()`: one UPDATE of the changed balances and one
INSERT of their ledger entries, in the caller's transaction, so the ledger and the balances commit together
and reconciliation is a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, transaction

from common.bulk import bulk_update
from common.exceptions import ApplicationError, NotFound
from common.outbox.services import publish
from common.topics import Topic
from portfolios.amounts import ZERO, amount_str, exact_arithmetic, parse_amount, quantize
from portfolios.models import Asset, Balance, LedgerEntry, Portfolio

Kind = LedgerEntry.Kind

# (portfolio id, asset code): what a balance row is unique by.
BalanceKey = tuple[uuid.UUID, str]


class InsufficientFunds(ApplicationError):
    code = "insufficient_funds"


class UnknownAsset(ApplicationError):
    code = "unknown_asset"


def asset_get(code: str) -> Asset:
    asset = Asset.objects.filter(code=code).first()
    if asset is None:
        raise UnknownAsset(f"unknown asset {code!r}", details={"asset": code})
    return asset


# The asset codes of the catalogue, read once per process: assets are seeded by migration and never change
# while the platform runs. A code missing from it reloads it (at most once per call), so an asset added
# meanwhile is still found; only a batch naming an unknown asset pays that one query.
_asset_codes: frozenset[str] | None = None


def assets_known(codes: Iterable[str]) -> frozenset[str]:
    """Which of these codes are assets of the catalogue."""
    global _asset_codes
    wanted = frozenset(codes)
    if _asset_codes is None or not wanted <= _asset_codes:
        _asset_codes = frozenset(Asset.objects.values_list("code", flat=True))
    return wanted & _asset_codes


def assets_cache_clear() -> None:
    """Forget the cached catalogue (tests that change the assets table)."""
    global _asset_codes
    _asset_codes = None


# kind -> (sign on available, sign on locked); FILL_DEBIT takes from locked unless told otherwise.
_DELTAS = {
    Kind.CREDIT: (1, 0),
    Kind.RESERVE: (-1, 1),
    Kind.RELEASE: (1, -1),
    Kind.FILL_DEBIT: (0, -1),
    Kind.FILL_CREDIT: (1, 0),
    Kind.FEE: (-1, 0),
}


class BalanceBook:
    """The balances one transaction locked, the movements it applied to them in memory, and their writing."""

    def __init__(self, balances: dict[BalanceKey, Balance]):
        self._balances = balances
        self._changed: dict[int, Balance] = {}
        self.entries: list[LedgerEntry] = []

    def get(self, portfolio_id: uuid.UUID, asset: str) -> Balance | None:
        return self._balances.get((portfolio_id, asset))

    def move(
        self,
        portfolio_id: uuid.UUID,
        asset: str,
        *,
        kind: str,
        amount: Decimal,
        reference: str,
        from_available: bool = False,
    ) -> LedgerEntry | None:
        """Apply one movement to a locked balance and ledger it (written by write()); raises InsufficientFunds.

        `from_available` makes a FILL_DEBIT take from available (the part of a fill its reservation did not
        cover). A zero amount changes nothing and writes nothing; a balance with no row holds nothing.
        """
        if amount < 0:
            raise ValueError(f"a movement amount is never negative (got {amount})")
        if amount == 0:
            return None
        balance = self._balances.get((portfolio_id, asset))
        on_available, on_locked = (-1, 0) if kind == Kind.FILL_DEBIT and from_available else _DELTAS[kind]
        with exact_arithmetic():
            available_delta, locked_delta = amount * on_available, amount * on_locked
            before_available, before_locked = (balance.available, balance.locked) if balance else (ZERO, ZERO)
            available, locked = before_available + available_delta, before_locked + locked_delta
        if balance is None or available < 0 or locked < 0:
            raise InsufficientFunds(
                f"{kind} of {amount_str(amount)} {asset} exceeds the balance",
                details={
                    "asset": asset,
                    "available": amount_str(before_available),
                    "locked": amount_str(before_locked),
                },
            )
        balance.available, balance.locked = available, locked
        self._changed[balance.pk] = balance
        entry = LedgerEntry(
            user_id=balance.user_id,
            portfolio_id=balance.portfolio_id,
            asset_id=balance.asset_id,
            kind=kind,
            amount=amount,
            available_delta=available_delta,
            locked_delta=locked_delta,
            reference=reference[:255],
        )
        self.entries.append(entry)
        return entry

    def write(self) -> None:
        """One UPDATE of every changed balance and one INSERT of every ledger entry, in the caller's transaction."""
        if not connection.in_atomic_block:
            raise RuntimeError("balances are written inside the transaction that locked them")
        if self._changed:
            bulk_update([self._changed[pk] for pk in sorted(self._changed)], ["available", "locked", "updated_at"])
            self._changed.clear()
        if self.entries:
            LedgerEntry.objects.bulk_create(self.entries)
            self.entries = []


def balances_lock(keys: Iterable[BalanceKey], *, create: Iterable[BalanceKey] = ()) -> BalanceBook:
    """Lock these balances for the caller's transaction: one SELECT ... FOR UPDATE, rows in id order.

    The rows of `create` are inserted first where missing (INSERT ... ON CONFLICT DO NOTHING: a concurrent
    creator wins and its row is locked here); a key without a row is absent from the book. Locking in id
    order means two transactions locking overlapping sets never deadlock. Each balance carries its
    portfolio's `user_id`, which the ledger records.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("balances_lock() must run inside the transaction that changes the balances")
    to_create = sorted(set(create))
    wanted = sorted(set(keys) | set(to_create))
    if not wanted:
        return BalanceBook({})
    if to_create:
        Balance.objects.bulk_create([Balance(portfolio_id=p, asset_id=a) for p, a in to_create], ignore_conflicts=True)
    rows = Balance.objects.raw(
        "SELECT b.*, p.user_id FROM balances b JOIN portfolios p ON p.id = b.portfolio_id "
        "WHERE (b.portfolio_id, b.asset_id) IN (SELECT * FROM unnest(%s::uuid[], %s::text[])) "
        "ORDER BY b.id FOR UPDATE OF b",
        [[str(p) for p, _ in wanted], [a for _, a in wanted]],
    )
    return BalanceBook({(b.portfolio_id, b.asset_id): b for b in rows})


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
        key = (portfolio.id, asset_row.code)
        book = balances_lock([key], create=[key])
        book.move(*key, kind=Kind.CREDIT, amount=amount, reference=reason)
        book.write()
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
    return book.get(*key)
