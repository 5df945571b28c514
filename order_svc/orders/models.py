"""Tables of order_svc: symbols, orders, order events, fills, sagas and the last trade per symbol."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q

# Every amount: NUMERIC(32, 8). Binance quotes prices, quantities and commissions with 8 decimals.
AMOUNT = {"max_digits": 32, "decimal_places": 8}


class NextVal(models.Func):
    """nextval('<sequence>'): a column's database default drawn from a sequence of its own (migration 0004).

    The value is made by the INSERT and comes back in its RETURNING clause, so nothing reads it afterwards.
    """

    function = "nextval"
    output_field = models.BigIntegerField()

    def __init__(self, sequence: str):
        super().__init__(models.Value(sequence))


ORDER_NUMBER_SEQUENCE = "orders_number_seq"
FILL_NUMBER_SEQUENCE = "fills_number_seq"


class Side(models.TextChoices):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(models.TextChoices):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(models.TextChoices):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(models.TextChoices):
    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
FINAL_STATUSES = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


class Symbol(models.Model):
    """A tradable pair and its Binance filters (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL)."""

    symbol = models.CharField(max_length=20, primary_key=True)
    base_asset = models.CharField(max_length=10)
    quote_asset = models.CharField(max_length=10)
    is_trading = models.BooleanField(default=True)
    min_price = models.DecimalField(**AMOUNT)
    max_price = models.DecimalField(**AMOUNT)
    tick_size = models.DecimalField(**AMOUNT)
    min_qty = models.DecimalField(**AMOUNT)
    max_qty = models.DecimalField(**AMOUNT)
    step_size = models.DecimalField(**AMOUNT)
    min_notional = models.DecimalField(**AMOUNT)

    class Meta:
        db_table = "symbols"
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tick_size__gt=0) & Q(step_size__gt=0) & Q(min_price__gt=0) & Q(min_qty__gt=0),
                name="symbol_filters_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_price__gte=F("min_price")) & Q(max_qty__gte=F("min_qty")), name="symbol_filter_ranges"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Binance's integer orderId (the platform's own API names orders by `id`).
    number = models.BigIntegerField(unique=True, editable=False, db_default=NextVal(ORDER_NUMBER_SEQUENCE))
    user_id = models.UUIDField(db_index=True)
    client_order_id = models.CharField(max_length=64)
    symbol = models.ForeignKey(Symbol, on_delete=models.PROTECT, related_name="orders", db_column="symbol")
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=6, choices=OrderType.choices)
    # NULL, not "", for MARKET orders: the type constraint reads better and the contract says null.
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, null=True, blank=True)  # noqa: DJ001
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True)  # null: a MARKET BUY by quote_order_qty
    price = models.DecimalField(**AMOUNT, null=True, blank=True)  # LIMIT only
    quote_order_qty = models.DecimalField(**AMOUNT, null=True, blank=True)  # MARKET BUY only
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_NEW)
    executed_qty = models.DecimalField(**AMOUNT, default=0)
    cumulative_quote_qty = models.DecimalField(**AMOUNT, default=0)
    reserved_asset = models.CharField(max_length=10)
    reserved_amount = models.DecimalField(**AMOUNT)
    reason = models.CharField(max_length=255, blank=True)  # why it was rejected, cancelled or expired
    # The W3C trace context of the request that placed it: its fills, made later by the fill engine from a
    # market-data batch, continue that trace, so one trace follows the order from POST to settlement.
    traceparent = models.CharField(max_length=64, blank=True, default="")
    accepted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "client_order_id"], name="order_client_id_unique_per_user"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(
                condition=(
                    Q(type=OrderType.LIMIT, price__gt=0, quantity__gt=0, time_in_force__isnull=False)
                    | Q(type=OrderType.MARKET, price__isnull=True, time_in_force__isnull=True)
                ),
                name="order_type_fields",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0) | Q(quantity__isnull=True, side=Side.BUY, quote_order_qty__gt=0),
                name="order_quantity_given",
            ),
            models.CheckConstraint(
                condition=Q(executed_qty__gte=0) & Q(cumulative_quote_qty__gte=0) & Q(reserved_amount__gt=0),
                name="order_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(quantity__isnull=True) | Q(executed_qty__lte=F("quantity")), name="order_not_overfilled"
            ),
        ]
        indexes = [
            models.Index(fields=["symbol", "status"], name="order_symbol_status_idx"),
            models.Index(fields=["user_id", "-created_at"], name="order_user_created_idx"),
            # Binance's allOrders: one user's orders of one symbol by orderId.
            models.Index(fields=["user_id", "symbol", "number"], name="order_user_symbol_number_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.type} {self.symbol_id} {self.id}"

    @property
    def remaining_qty(self):
        return None if self.quantity is None else self.quantity - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OrderEvent(models.Model):
    """Every event published about an order, as it was published: the order's history."""

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_events"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} {self.order_id}"


class Fill(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Binance's integer id of an account's trade (myTrades' `id`, a FULL answer's `tradeId`): one per fill, where
    # `trade_id`, the market trade that made it, may have filled several orders.
    number = models.BigIntegerField(unique=True, editable=False, db_default=NextVal(FILL_NUMBER_SEQUENCE))
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    trade_id = models.BigIntegerField()
    price = models.DecimalField(**AMOUNT)
    qty = models.DecimalField(**AMOUNT)
    quote_qty = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT)
    fee_asset = models.CharField(max_length=10)
    is_maker = models.BooleanField()
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "fills"
        ordering = ["executed_at", "created_at"]
        constraints = [
            # A trade fills an order at most once, however often the trade is delivered.
            models.UniqueConstraint(fields=["order", "trade_id"], name="fill_once_per_trade"),
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(qty__gt=0) & Q(quote_qty__gt=0) & Q(fee__gte=0), name="fill_amounts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.qty} @ {self.price} ({self.order_id})"


class SagaState(models.TextChoices):
    RESERVING = "RESERVING"  # reserve_funds sent, waiting for portfolio_svc
    COMPLETED = "COMPLETED"  # funds reserved, order accepted
    FAILED = "FAILED"  # portfolio_svc refused: nothing to compensate
    COMPENSATED = "COMPENSATED"  # timed out or cancelled while reserving: release_funds sent


class Saga(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, default="place_order")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="saga")
    state = models.CharField(max_length=16, choices=SagaState.choices, default=SagaState.RESERVING)
    current_step = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    history = models.JSONField(default=list)  # [{"at", "step", "state", "note"}], oldest first
    deadline = models.DateTimeField(null=True, blank=True)  # null once the saga waits for nothing
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sagas"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=SagaState.values), name="saga_state_valid"),
            models.CheckConstraint(
                condition=~Q(state=SagaState.RESERVING) | Q(deadline__isnull=False), name="saga_waiting_has_deadline"
            ),
        ]
        indexes = [
            models.Index(fields=["deadline"], condition=Q(state="RESERVING"), name="saga_reserving_deadline_idx")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.state})"


class LastTrade(models.Model):
    """The market-data read model: the last trade applied per symbol (also the fill engine's dedup mark)."""

    symbol = models.OneToOneField(Symbol, on_delete=models.CASCADE, primary_key=True, db_column="symbol")
    trade_id = models.BigIntegerField()
    price = models.DecimalField(**AMOUNT)
    qty = models.DecimalField(**AMOUNT)
    traded_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "last_trades"

    def __str__(self) -> str:
        return f"{self.symbol_id} #{self.trade_id} @ {self.price}"
