"""Tables of transaction_svc's transactions app: the month-partitioned ledger, its fill-id guard and the event log.

`transactions` is declared here for the ORM, but its DDL lives in migration 0001 (RunSQL): it is a
PostgreSQL table PARTITION BY RANGE (executed_at), whose real primary key is (id, executed_at) because a
partitioned table's unique keys must contain the partition key. Django sees `id` as the primary key,
which is unique in practice (uuid4) and in the database through recorded_fills.transaction_id.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class Transaction(models.Model):
    """One fill of one order, as recorded in the ledger (one row per fill id)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    fill_id = models.CharField(max_length=64)
    order_id = models.CharField(max_length=64)
    user_id = models.UUIDField()
    symbol = models.CharField(max_length=32)
    base_asset = models.CharField(max_length=16)
    quote_asset = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=Side.choices)
    price = models.DecimalField(**AMOUNT)
    qty = models.DecimalField(**AMOUNT)
    quote_qty = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT)
    fee_asset = models.CharField(max_length=16)
    order_status = models.CharField(max_length=16)
    is_maker = models.BooleanField(null=True)
    trade_id = models.BigIntegerField(null=True)
    executed_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "transactions"
        indexes = [
            # The history query: one user's rows newest first, keyset-paginated on (executed_at, id).
            models.Index(fields=["user_id", "-executed_at", "-id"], name="transactions_user_time_idx"),
            # The admin's newest-first changelist and its date hierarchy (min/max) across every user.
            models.Index(fields=["-executed_at", "-id"], name="transactions_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(side__in=["BUY", "SELL"]), name="transactions_side_valid"),
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(qty__gt=0) & Q(quote_qty__gt=0) & Q(fee__gte=0),
                name="transactions_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} @ {self.price} (fill {self.fill_id})"


class RecordedFill(models.Model):
    """The fill ids already in the ledger: unpartitioned, so a fill id is unique whatever its month.

    transactions (fill_id, id, executed_at) references (fill_id, transaction_id, executed_at) here
    (a composite foreign key added in migration 0001), so each fill id maps to exactly one ledger row.
    """

    fill_id = models.CharField(max_length=64, primary_key=True)
    transaction_id = models.UUIDField(unique=True)
    executed_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "recorded_fills"
        constraints = [
            models.UniqueConstraint(
                fields=["fill_id", "transaction_id", "executed_at"], name="recorded_fills_ledger_key"
            ),
        ]

    def __str__(self) -> str:
        return self.fill_id


class TransactionEventType(models.TextChoices):
    ORDER_FILLED = "order.filled", "order filled"
    ORDER_CANCELLED = "order.cancelled", "order cancelled"
    ORDER_REJECTED = "order.rejected", "order rejected"


class TransactionEvent(models.Model):
    """An order event this service recorded: every fill it booked, every cancellation and rejection."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=100, unique=True)
    event_type = models.CharField(max_length=32, choices=TransactionEventType.choices)
    order_id = models.CharField(max_length=64)
    user_id = models.UUIDField()
    symbol = models.CharField(max_length=32)
    fill_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL = no fill, outside the unique key
    transaction_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    data = models.JSONField()
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "transaction_events"
        indexes = [models.Index(fields=["order_id"], name="transaction_events_order_idx")]
        constraints = [
            # An order is cancelled or rejected once and a fill is booked once, whatever the event id.
            models.UniqueConstraint(
                fields=["order_id", "event_type"],
                condition=Q(event_type__in=["order.cancelled", "order.rejected"]),
                name="transaction_events_one_end_per_order",
            ),
            models.UniqueConstraint(
                fields=["fill_id"], condition=Q(fill_id__isnull=False), name="transaction_events_one_per_fill"
            ),
            models.CheckConstraint(
                condition=Q(event_type="order.filled", fill_id__isnull=False, transaction_id__isnull=False)
                | Q(~Q(event_type="order.filled"), fill_id__isnull=True, transaction_id__isnull=True),
                name="transaction_events_fill_only_on_filled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.order_id}"
