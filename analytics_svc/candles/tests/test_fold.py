"""Folding trades into candles in the database: order, redelivery, rollups, exactly-once marks."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from candles.handlers import handle_trades
from candles.intervals import ms_to_datetime
from candles.models import CANDLE_MODELS, Candle1h, Candle1m, Candle5m, Candle15m, SymbolCursor
from candles.services import trades_apply
from candles.tests.conftest import GOLDEN_SYMBOL, read_klines, read_trades
from candles.trades import Trade
from common.events import Envelope

pytestmark = pytest.mark.django_db(transaction=True)

T0 = 1_700_000_040_000  # a minute boundary, 2023-11-14 22:14 UTC


def trade(trade_id: int, price: str, qty: str, at_ms: int, *, maker: bool = False, symbol: str = "BTCUSDT") -> Trade:
    return Trade(symbol, trade_id, price, qty, at_ms, maker)


def golden_envelopes() -> list[Envelope]:
    return [
        Envelope.new(
            "trade",
            source="tests",
            subject=GOLDEN_SYMBOL,
            data=Trade(
                GOLDEN_SYMBOL,
                int(t["trade_id"]),
                t["price"],
                t["qty"],
                int(t["time_ms"]),
                t["is_buyer_maker"] == "true",
            ).to_data(),
        )
        for t in read_trades()
    ]


def stored(model) -> list[tuple]:
    return list(
        model.objects.order_by("symbol", "open_time").values_list(
            "symbol", "open_time", "close_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
            "taker_buy_volume", "taker_buy_quote_volume",
        )
    )  # fmt: skip


def test_trades_of_a_minute_fold_into_one_candle_with_every_kline_field():
    trades_apply(
        trades=[
            trade(1, "100.00", "1.5", T0 + 1_000),
            trade(2, "103.50", "0.5", T0 + 2_000, maker=True),
            trade(3, "99.25", "2", T0 + 59_999),
            trade(4, "101.00", "1", T0 + 60_000),
        ]
    )

    first, second = Candle1m.objects.order_by("open_time")
    assert first.open_time == ms_to_datetime(T0) and first.close_time == ms_to_datetime(T0 + 59_999)
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("100.00"),
        Decimal("103.50"),
        Decimal("99.25"),
        Decimal("99.25"),
    )
    assert first.volume == Decimal("4.0") and first.trades == 3
    assert first.quote_volume == Decimal("100.00") * Decimal("1.5") + Decimal("103.50") * Decimal("0.5") + Decimal(
        "99.25"
    ) * Decimal("2")
    assert first.taker_buy_volume == Decimal("3.5")  # trade 2's buyer was the maker: a taker sell
    assert first.taker_buy_quote_volume == Decimal("150.00") + Decimal("198.50")
    assert (second.open, second.trades) == (Decimal("101.00"), 1)


def test_a_later_batch_merges_into_the_stored_minute_keeping_its_open():
    trades_apply(trades=[trade(1, "100", "1", T0 + 1_000), trade(2, "105", "1", T0 + 2_000)])
    trades_apply(trades=[trade(3, "95", "2", T0 + 3_000), trade(4, "97", "1", T0 + 4_000)])

    candle = Candle1m.objects.get()
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal(100),
        Decimal(105),
        Decimal(95),
        Decimal(97),
    )
    assert (candle.volume, candle.trades) == (Decimal(5), 4)


def test_a_redelivered_trade_never_counts_twice():
    first = trades_apply(trades=[trade(1, "100", "1", T0), trade(2, "101", "1", T0 + 1)])
    before = {name: stored(model) for name, model in CANDLE_MODELS.items()}

    again = trades_apply(trades=[trade(2, "101", "1", T0 + 1), trade(1, "100", "1", T0), trade(2, "101", "1", T0 + 1)])

    assert (first.applied, first.skipped) == (2, 0)
    assert (again.applied, again.skipped) == (0, 2)
    assert {name: stored(model) for name, model in CANDLE_MODELS.items()} == before
    cursor = SymbolCursor.objects.get(symbol="BTCUSDT")
    assert (cursor.last_trade_id, cursor.trades_applied, cursor.last_price) == (2, 2, Decimal(101))


def test_a_batch_overlapping_the_mark_applies_only_the_newer_trades():
    trades_apply(trades=[trade(1, "100", "1", T0), trade(2, "101", "1", T0 + 1)])

    result = trades_apply(trades=[trade(2, "101", "1", T0 + 1), trade(3, "90", "3", T0 + 2)])

    assert (result.applied, result.skipped) == (1, 1)
    candle = Candle1m.objects.get()
    assert (candle.volume, candle.trades, candle.low, candle.close) == (Decimal(5), 3, Decimal(90), Decimal(90))


def test_rollups_take_the_first_open_the_last_close_the_extremes_and_the_sums():
    minute = 60_000
    trades_apply(
        trades=[
            trade(1, "10", "1", T0 - T0 % 3_600_000 + 1),  # the first minute of the hour
            trade(2, "12", "2", T0 - T0 % 3_600_000 + 7 * minute),
            trade(3, "8", "1", T0 - T0 % 3_600_000 + 16 * minute),
            trade(4, "11", "4", T0 - T0 % 3_600_000 + 59 * minute + 5),
        ]
    )

    hour = Candle1h.objects.get()
    assert (hour.open, hour.high, hour.low, hour.close, hour.volume, hour.trades) == (
        Decimal(10),
        Decimal(12),
        Decimal(8),
        Decimal(11),
        Decimal(8),
        4,
    )
    assert hour.close_time == hour.open_time + (ms_to_datetime(3_599_999) - ms_to_datetime(0))
    assert Candle5m.objects.count() == 4 and Candle15m.objects.count() == 3  # only buckets that had trades
    assert [c.volume for c in Candle15m.objects.order_by("open_time")] == [Decimal(3), Decimal(1), Decimal(4)]


def test_symbols_fold_independently_in_one_batch():
    trades_apply(
        trades=[
            trade(7, "60000.01", "0.001", T0, symbol="BTCUSDT"),
            trade(7, "3000.5", "0.1", T0, symbol="ETHUSDT"),
            trade(8, "60001", "0.002", T0 + 5, symbol="BTCUSDT"),
        ]
    )

    assert dict(Candle1m.objects.values_list("symbol", "trades")) == {"BTCUSDT": 2, "ETHUSDT": 1}
    assert dict(SymbolCursor.objects.values_list("symbol", "last_trade_id")) == {"BTCUSDT": 8, "ETHUSDT": 7}


def test_trades_shuffled_within_each_batch_give_the_same_candles_as_in_order():
    envelopes = golden_envelopes()
    shuffled = envelopes[:]
    rng = random.Random(9)
    batches = [shuffled[i : i + 500] for i in range(0, len(shuffled), 500)]
    for batch in batches:
        rng.shuffle(batch)
        handle_trades(batch)

    binance_1m = read_klines("binance_XRPETH_klines_1m_20191011.csv")
    assert [(int(c[1].timestamp() * 1000), c[3], c[4], c[5], c[6], c[7]) for c in stored(Candle1m)] == [
        (k.open_time, k.open, k.high, k.low, k.close, k.volume) for k in binance_1m
    ]
    assert len(stored(Candle5m)) == 706


def test_an_empty_batch_writes_nothing():
    result = trades_apply(trades=[])

    assert result.applied == 0
    assert not SymbolCursor.objects.exists() and not Candle1m.objects.exists()
