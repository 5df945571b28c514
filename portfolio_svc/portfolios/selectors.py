"""Every read of portfolio_svc beyond a .get(): portfolios and balances of a user, valuation, reconciliation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Prefetch, Q, QuerySet, Sum

from common.exceptions import NotFound
from portfolios.amounts import ZERO, exact_arithmetic, quantize
from portfolios.models import Asset, Balance, LedgerEntry, Portfolio, Price, Reservation, Symbol

Kind = LedgerEntry.Kind


def portfolio_list(*, user_id: uuid.UUID) -> QuerySet[Portfolio]:
    balances = Balance.objects.select_related("asset").order_by("asset_id")
    return Portfolio.objects.filter(user_id=user_id).prefetch_related(Prefetch("balances", queryset=balances))


def portfolio_defaults(*, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Portfolio]:
    """The default portfolio of each of these users that has one, by user id (one query for a whole batch)."""
    return {p.user_id: p for p in Portfolio.objects.filter(user_id__in=set(user_ids), is_default=True).order_by()}


def portfolio_get(*, user_id: uuid.UUID, portfolio_id: uuid.UUID) -> Portfolio:
    """The user's portfolio; another user's (or no) portfolio is the same NotFound, so ids leak nothing."""
    portfolio = portfolio_list(user_id=user_id).filter(id=portfolio_id).first()
    if portfolio is None:
        raise NotFound("portfolio not found")
    return portfolio


def balance_list(
    *, user_id: uuid.UUID, portfolio_id: uuid.UUID | None = None, asset: str | None = None
) -> QuerySet[Balance]:
    balances = Balance.objects.filter(portfolio__user_id=user_id).select_related("asset")
    if portfolio_id is not None:
        balances = balances.filter(portfolio_id=portfolio_id)
    if asset:
        balances = balances.filter(asset_id=asset.upper())
    return balances.order_by("portfolio__created_at", "portfolio_id", "asset_id")


# --- valuation ----------------------------------------------------------------------------------------


def asset_prices(*, quote: str) -> dict[str, Decimal]:
    """Each asset's last price in `quote`: a direct <ASSET><QUOTE> pair, else one hop (XRPETH x ETHUSDT)."""
    last = dict(Price.objects.filter(symbol__in=Symbol.objects.values("symbol")).values_list("symbol", "price"))
    pairs = list(Symbol.objects.values_list("symbol", "base_asset_id", "quote_asset_id"))
    prices = {quote: Decimal(1)}
    for symbol, base, pair_quote in pairs:
        if pair_quote == quote and symbol in last:
            prices.setdefault(base, last[symbol])
    direct = dict(prices)
    with exact_arithmetic():
        for symbol, base, pair_quote in sorted(pairs):
            if base not in prices and pair_quote in direct and symbol in last:
                prices[base] = last[symbol] * direct[pair_quote]
    return prices


@dataclass
class AssetValue:
    asset: str
    quantity: Decimal
    price: Decimal | None
    value: Decimal | None


@dataclass
class Valuation:
    quote_asset: str
    assets: list[AssetValue]
    total: Decimal
    missing_prices: list[str] = field(default_factory=list)


def portfolio_valuation(*, portfolio: Portfolio) -> Valuation:
    """What the portfolio's balances (available + locked) are worth at last prices; unpriced assets are listed."""
    quote = settings.PORTFOLIO_VALUATION_ASSET
    precision = Asset.objects.filter(code=quote).values_list("precision", flat=True).first() or 8
    prices = asset_prices(quote=quote)
    values, missing, total = [], [], ZERO
    with exact_arithmetic():
        for balance in portfolio.balances.all():
            quantity = balance.available + balance.locked
            price = prices.get(balance.asset_id)
            if price is None and quantity:
                missing.append(balance.asset_id)
                values.append(AssetValue(balance.asset_id, quantity, None, None))
                continue
            value = quantize(quantity * price, precision) if quantity else ZERO
            total += value
            values.append(AssetValue(balance.asset_id, quantity, price, value))
    return Valuation(quote, values, total, missing)


# --- reconciliation -----------------------------------------------------------------------------------


@dataclass
class ReconciliationRow:
    """One user's asset: what the balances hold against what the ledger and the reservations say."""

    user_id: uuid.UUID
    asset: str
    available: Decimal = ZERO
    locked: Decimal = ZERO
    credits: Decimal = ZERO
    fill_credits: Decimal = ZERO
    fill_debits: Decimal = ZERO
    fees: Decimal = ZERO
    ledger_available: Decimal = ZERO
    ledger_locked: Decimal = ZERO
    open_reservations: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.available + self.locked

    @property
    def expected_total(self) -> Decimal:
        return self.credits + self.fill_credits - self.fill_debits - self.fees

    @property
    def problems(self) -> list[str]:
        found = []
        if self.total != self.expected_total:
            found.append(f"total {self.total} != credits + fills - debits - fees {self.expected_total}")
        if self.available != self.ledger_available:
            found.append(f"available {self.available} != ledger {self.ledger_available}")
        if self.locked != self.ledger_locked:
            found.append(f"locked {self.locked} != ledger {self.ledger_locked}")
        if self.locked != self.open_reservations:
            found.append(f"locked {self.locked} != open reservations {self.open_reservations}")
        return found


def reconciliation_report() -> list[ReconciliationRow]:
    """Per user and asset, three queries: balances, ledger sums by kind, and what open reservations hold."""
    rows: dict[tuple[uuid.UUID, str], ReconciliationRow] = {}

    def row(user_id: uuid.UUID, asset: str) -> ReconciliationRow:
        return rows.setdefault((user_id, asset), ReconciliationRow(user_id, asset))

    for r in Balance.objects.values("portfolio__user_id", "asset_id").annotate(
        available_sum=Sum("available"), locked_sum=Sum("locked")
    ):
        target = row(r["portfolio__user_id"], r["asset_id"])
        target.available, target.locked = r["available_sum"], r["locked_sum"]

    sums = {kind: Sum("amount", filter=Q(kind=kind), default=ZERO) for kind in Kind.values}
    for r in LedgerEntry.objects.values("user_id", "asset_id").annotate(
        **sums, available_sum=Sum("available_delta"), locked_sum=Sum("locked_delta")
    ):
        target = row(r["user_id"], r["asset_id"])
        target.credits, target.fill_credits = r[Kind.CREDIT], r[Kind.FILL_CREDIT]
        target.fill_debits, target.fees = r[Kind.FILL_DEBIT], r[Kind.FEE]
        target.ledger_available, target.ledger_locked = r["available_sum"], r["locked_sum"]

    open_amount = Sum(F("amount") - F("consumed") - F("released"))
    for r in (
        Reservation.objects.filter(state=Reservation.State.ACTIVE).values("user_id", "asset").annotate(open=open_amount)
    ):
        row(r["user_id"], r["asset"]).open_reservations = r["open"]

    return [rows[key] for key in sorted(rows, key=lambda k: (str(k[0]), k[1]))]
