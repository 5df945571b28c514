"""Tables of analytics_svc's candles app: OHLCV candles per interval and the last trade applied per symbol."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from candles.intervals import INTERVALS

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class Candle(models.Model):
    """One candle: the trades of one symbol in [open_time, close_time], Binance's kline fields."""

    symbol = models.CharField(max_length=20)
    open_time = models.DateTimeField()
    close_time = models.DateTimeField()
    open = models.DecimalField(**AMOUNT)
    high = models.DecimalField(**AMOUNT)
    low = models.DecimalField(**AMOUNT)
    close = models.DecimalField(**AMOUNT)
    volume = models.DecimalField(**AMOUNT)
    quote_volume = models.DecimalField(**AMOUNT)
    trades = models.PositiveIntegerField()
    taker_buy_volume = models.DecimalField(**AMOUNT)
    taker_buy_quote_volume = models.DecimalField(**AMOUNT)

    interval_name: str = ""

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval_name} {self.open_time:%Y-%m-%d %H:%M}"


def _meta(interval: str) -> type:
    spec = INTERVALS[interval]
    name = spec.table.replace("ohlcv_", "")

    class Meta:
        db_table = spec.table
        ordering = ["symbol", "open_time"]
        verbose_name = f"candle {interval}"
        verbose_name_plural = f"candles {interval}"
        constraints = [
            models.UniqueConstraint(fields=["symbol", "open_time"], name=f"ohlcv_{name}_symbol_open_time"),
            models.CheckConstraint(
                condition=Q(close_time=F("open_time") + spec.span - timedelta(milliseconds=1)),
                name=f"ohlcv_{name}_close_time",
            ),
            models.CheckConstraint(
                condition=Q(low__gt=0)
                & Q(high__gte=F("low"))
                & Q(open__gte=F("low"))
                & Q(open__lte=F("high"))
                & Q(close__gte=F("low"))
                & Q(close__lte=F("high")),
                name=f"ohlcv_{name}_prices",
            ),
            models.CheckConstraint(
                condition=Q(trades__gt=0)
                & Q(volume__gte=0)
                & Q(quote_volume__gte=0)
                & Q(taker_buy_volume__gte=0)
                & Q(taker_buy_volume__lte=F("volume"))
                & Q(taker_buy_quote_volume__gte=0)
                & Q(taker_buy_quote_volume__lte=F("quote_volume")),
                name=f"ohlcv_{name}_volumes",
            ),
        ]

    return Meta


class Candle1m(Candle):
    interval_name = "1m"
    Meta = _meta("1m")


class Candle5m(Candle):
    interval_name = "5m"
    Meta = _meta("5m")


class Candle15m(Candle):
    interval_name = "15m"
    Meta = _meta("15m")


class Candle1h(Candle):
    interval_name = "1h"
    Meta = _meta("1h")


CANDLE_MODELS: dict[str, type[Candle]] = {"1m": Candle1m, "5m": Candle5m, "15m": Candle15m, "1h": Candle1h}


class SymbolCursor(models.Model):
    """Per symbol: the last trade folded into the candles (the dedup mark) and the latest price."""

    symbol = models.CharField(max_length=20, primary_key=True)
    last_trade_id = models.BigIntegerField()
    last_price = models.DecimalField(**AMOUNT, null=True)
    last_trade_time = models.DateTimeField(null=True)
    # Database defaults: the consumer writes these rows with raw SQL, not through the ORM.
    trades_applied = models.BigIntegerField(db_default=0)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "candle_symbol_cursors"
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(trades_applied__gte=0), name="candle_cursor_trades_applied"),
            models.CheckConstraint(
                condition=Q(last_price__isnull=True) | Q(last_price__gt=0), name="candle_cursor_price"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} @ {self.last_trade_id}"


class CandleRow(models.Model):
    """Every interval's candles in one read-only view (ohlcv_candles), so the admin filters by interval."""

    id = models.CharField(max_length=64, primary_key=True)
    interval = models.CharField(max_length=4)
    symbol = models.CharField(max_length=20)
    open_time = models.DateTimeField()
    close_time = models.DateTimeField()
    open = models.DecimalField(**AMOUNT)
    high = models.DecimalField(**AMOUNT)
    low = models.DecimalField(**AMOUNT)
    close = models.DecimalField(**AMOUNT)
    volume = models.DecimalField(**AMOUNT)
    quote_volume = models.DecimalField(**AMOUNT)
    trades = models.PositiveIntegerField()
    taker_buy_volume = models.DecimalField(**AMOUNT)
    taker_buy_quote_volume = models.DecimalField(**AMOUNT)

    class Meta:
        managed = False
        db_table = "ohlcv_candles"
        ordering = ["-open_time"]
        verbose_name = "candle"

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class MarketTrade(models.Model):
    """A trade of the market-data topic as it was folded, kept for a day and a bit: Binance's recent and aggregate
    trades, the 24 hour ticker's first trade id and last quantity, the 5 minute average price and 1s klines."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=20)
    trade_id = models.BigIntegerField()
    price = models.DecimalField(**AMOUNT)
    qty = models.DecimalField(**AMOUNT)
    quote_qty = models.DecimalField(**AMOUNT)
    traded_at = models.DateTimeField()
    is_buyer_maker = models.BooleanField()

    class Meta:
        db_table = "market_trades"
        ordering = ["symbol", "trade_id"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "trade_id"], name="market_trade_symbol_id"),
            models.CheckConstraint(condition=Q(price__gt=0) & Q(qty__gte=0), name="market_trade_amounts"),
        ]
        indexes = [models.Index(fields=["symbol", "traded_at"], name="market_trade_symbol_time_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} #{self.trade_id} {self.qty} @ {self.price}"
