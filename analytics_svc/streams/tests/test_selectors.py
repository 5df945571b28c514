"""What a kline or a mini ticker starts from: the stored candles and kept trades of its window, one query each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from candles.services import trades_apply
from candles.trades import Trade
from django.db import connection
from django.test.utils import CaptureQueriesContext

from streams import selectors
from streams.windows import bucket

pytestmark = pytest.mark.django_db


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


TRADES = [  # (id, time, price, qty, buyer is maker)
    (10, "2024-01-01T00:59:59", "95", "1", False),  # the hour before
    (11, "2024-01-01T01:00:10", "100", "1", False),
    (12, "2024-01-01T01:00:40", "110", "2", True),
    (13, "2024-01-01T01:07:30", "90", "1", False),
    (14, "2024-01-01T01:07:30.250", "92", "1", False),
]


@pytest.fixture
def stored():
    trades_apply(trades=[Trade("BTCUSDT", i, p, q, ms(at), m) for i, at, p, q, m in TRADES])


def seed(interval: str, at: str) -> selectors.KlineSeed:
    opened, closes = bucket(interval, ms(at))
    with CaptureQueriesContext(connection) as queries:
        result = selectors.kline_seed(symbol="BTCUSDT", interval=interval, open_ms=opened, close_ms=closes)
    assert len(queries) == 1
    return result


def test_a_minute_starts_from_its_stored_candle_with_its_first_trade_and_the_mark(stored):
    result = seed("1m", "2024-01-01T01:00:30")

    c = result.candle
    assert result.mark == 14
    assert (c.open_ms, c.close_ms, c.first_id, c.last_id, c.trades) == (
        ms("2024-01-01T01:00:00"),
        ms("2024-01-01T01:00:59.999"),
        11,
        14,
        2,
    )
    assert (c.open, c.high, c.low, c.close) == (Decimal(100), Decimal(110), Decimal(100), Decimal(110))
    assert (c.volume, c.quote_volume, c.taker_buy_volume, c.taker_buy_quote_volume) == (
        Decimal(3),
        Decimal(320),
        Decimal(1),
        Decimal(100),
    )


def test_an_hour_and_a_day_are_rolled_up_from_the_stored_candles(stored):
    hour, day = seed("1h", "2024-01-01T01:30:00"), seed("1d", "2024-01-01T12:00:00")

    assert (hour.candle.trades, hour.candle.first_id, hour.candle.low, hour.candle.close) == (
        4,
        11,
        Decimal(90),
        Decimal(92),
    )
    assert (day.candle.trades, day.candle.first_id, day.candle.open, day.candle.volume) == (
        5,
        10,
        Decimal(95),
        Decimal(6),
    )


def test_a_second_comes_from_the_kept_trades(stored):
    result = seed("1s", "2024-01-01T01:07:30.900")

    assert (result.candle.trades, result.candle.first_id, result.candle.open, result.candle.close) == (
        2,
        13,
        Decimal(90),
        Decimal(92),
    )


def test_a_window_with_nothing_stored_has_no_candle_but_the_mark(stored):
    result = seed("1m", "2024-01-01T02:00:00")

    assert result == selectors.KlineSeed(None, 14)
    assert selectors.kline_seed(symbol="NEWCOIN", interval="1m", open_ms=0, close_ms=59_999) == selectors.KlineSeed(
        None, -1
    )


def test_the_rolling_day_of_the_tickers(stored):
    windows = selectors.day_windows(symbols=["BTCUSDT", "NEWCOIN"], now=datetime(2024, 1, 1, 12, tzinfo=UTC))

    assert list(windows) == ["BTCUSDT"]
    w = windows["BTCUSDT"]
    assert (w.last_price, w.open, w.high, w.low, w.volume, w.last_id) == (
        Decimal(92),
        Decimal(95),
        Decimal(110),
        Decimal(90),
        Decimal(6),
        14,
    )
    assert selectors.symbols_known() == {"BTCUSDT"}
