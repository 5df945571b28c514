"""Tables of portfolio_svc's portfolios app: assets, symbols, portfolios, balances, reservations, ledger, prices."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

# Amounts: NUMERIC(38, 18) holds any contract decimal exactly (price x qty of 8-decimal steps has 16 places).
AMOUNT = {"max_digits": 38, "decimal_places": 18}


class Asset(models.Model):
    """The assets catalogue; `precision` is the number of decimals an amount of the asset is quantised to."""

    code = models.CharField(max_length=16, primary_key=True)
    name = models.CharField(max_length=64)
    precision = models.PositiveSmallIntegerField(default=8)

    class Meta:
        db_table = "assets"
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(precision__lte=18), name="asset_precision_lte_18")]

    def __str__(self) -> str:
        return self.code


class Symbol(models.Model):
    """A trading pair this service knows how to value (a read model of its own, seeded by migration)."""

    symbol = models.CharField(max_length=32, primary_key=True)
    base_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quote_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "symbols"
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=~Q(base_asset=F("quote_asset")), name="symbol_base_differs_from_quote")
        ]

    def __str__(self) -> str:
        return self.symbol


class Price(models.Model):
    """The last trade price per symbol, as market-data reported it; newer (trade time, trade id) wins."""

    symbol = models.CharField(max_length=32, primary_key=True)
    price = models.DecimalField(**AMOUNT)
    trade_id = models.BigIntegerField()
    trade_time = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "prices"
        ordering = ["symbol"]
        constraints = [models.CheckConstraint(condition=Q(price__gt=0), name="price_positive")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.price}"


class Portfolio(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField(db_index=True)
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portfolios"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "name"], name="portfolio_user_name_unique"),
            # One default portfolio per user: a redelivered user.registered can never make a second one.
            models.UniqueConstraint(fields=["user_id"], condition=Q(is_default=True), name="portfolio_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"


class Balance(models.Model):
    """What a portfolio holds of one asset; changed only by portfolios.services.balances."""

    id = models.BigAutoField(primary_key=True)
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="balances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    available = models.DecimalField(**AMOUNT, default=0)
    locked = models.DecimalField(**AMOUNT, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "balances"
        ordering = ["portfolio_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "asset"], name="balance_portfolio_asset_unique"),
            models.CheckConstraint(condition=Q(available__gte=0), name="balance_available_non_negative"),
            models.CheckConstraint(condition=Q(locked__gte=0), name="balance_locked_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.available} (+{self.locked} locked)"

    @property
    def total(self):
        return self.available + self.locked


class Reservation(models.Model):
    """Funds locked for one order (keyed by order id): what was reserved, consumed by fills and released."""

    class State(models.TextChoices):
        ACTIVE = "ACTIVE"  # something is still locked
        CONSUMED = "CONSUMED"  # closed: fills used all of it
        RELEASED = "RELEASED"  # closed: what the fills left went back to available
        FAILED = "FAILED"  # never locked anything (the reason says why)

    id = models.BigAutoField(primary_key=True)
    order_id = models.CharField(max_length=64, unique=True)
    saga_id = models.CharField(max_length=64, blank=True)
    user_id = models.UUIDField(db_index=True)
    # Null when nothing was ever locked: an unknown portfolio, or a release that came before any reserve.
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    asset = models.CharField(max_length=16, blank=True)
    amount = models.DecimalField(**AMOUNT)
    consumed = models.DecimalField(**AMOUNT, default=0)
    released = models.DecimalField(**AMOUNT, default=0)
    state = models.CharField(max_length=10, choices=State.choices)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reservations"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0, consumed__gte=0, released__gte=0), name="reservation_amounts_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=F("consumed") + F("released")), name="reservation_within_amount"
            ),
            # A closed reservation accounts for every unit it locked; a failed one never moved anything.
            models.CheckConstraint(
                condition=Q(state="ACTIVE", portfolio__isnull=False)
                | Q(state__in=["CONSUMED", "RELEASED"], amount=F("consumed") + F("released"))
                | Q(state="FAILED", consumed=0, released=0),
                name="reservation_state_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.amount} {self.asset} {self.state}"

    @property
    def remaining(self):
        """What is still locked for this order."""
        if self.state != self.State.ACTIVE:
            return Decimal(0)
        return self.amount - self.consumed - self.released


class Settlement(models.Model):
    """One settled fill (fill id unique): the same fill delivered twice settles once."""

    id = models.BigAutoField(primary_key=True)
    fill_id = models.CharField(max_length=64, unique=True)
    order_id = models.CharField(max_length=64, db_index=True)
    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, related_name="settlements")
    side = models.CharField(max_length=4, choices=[("BUY", "BUY"), ("SELL", "SELL")])
    debit_asset = models.CharField(max_length=16)
    debit_amount = models.DecimalField(**AMOUNT)
    # The part of the debit the reservation did not cover (a MARKET buffer too small): taken from available.
    debit_from_available = models.DecimalField(**AMOUNT, default=0)
    credit_asset = models.CharField(max_length=16)
    credit_amount = models.DecimalField(**AMOUNT)
    fee_asset = models.CharField(max_length=16)
    fee = models.DecimalField(**AMOUNT)
    released_amount = models.DecimalField(**AMOUNT, default=0)
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "settlements"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(debit_amount__gte=0, credit_amount__gte=0, fee__gte=0, released_amount__gte=0),
                name="settlement_amounts_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"fill {self.fill_id} of {self.order_id}"


class LedgerEntry(models.Model):
    """Every balance movement, written with it in one transaction: reconciliation is a query over this table."""

    class Kind(models.TextChoices):
        CREDIT = "CREDIT"  # paper funds (starting funds, an operator's credit)
        RESERVE = "RESERVE"  # available -> locked
        RELEASE = "RELEASE"  # locked -> available
        FILL_DEBIT = "FILL_DEBIT"  # what a fill paid (out of locked, or available beyond the reservation)
        FILL_CREDIT = "FILL_CREDIT"  # what a fill bought (gross; the fee is its own entry)
        FEE = "FEE"  # the fill's fee, out of available

    id = models.BigAutoField(primary_key=True)
    user_id = models.UUIDField()
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(**AMOUNT)
    available_delta = models.DecimalField(**AMOUNT)
    locked_delta = models.DecimalField(**AMOUNT)
    reference = models.CharField(max_length=255, blank=True)  # order id, fill id or the credit's reason
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_entries"
        ordering = ["id"]
        indexes = [models.Index(fields=["user_id", "asset"], name="ledger_user_asset_idx")]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="ledger_amount_non_negative")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.asset_id}"
