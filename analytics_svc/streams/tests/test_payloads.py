"""Binance's payloads from the platform's events: every documented field, with the exchange's names and types
(decimals as strings, times in ms, ids as integers)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from candles.trades import Trade

from streams import names, payloads
from streams.payloads import Candle, DayWindow, OrderView
from streams.windows import bucket

TRADE = Trade("BTCUSDT", 12345, "27000.1", "0.5", 1_700_000_000_123, True)
ORDER_ID = "0b6c9a8e-6a3f-4a1e-9d5b-2f0e0c7a1b11"
USER_ID = "7d1f0a52-3c8e-4d7b-a0a6-0f6b2a9d4c21"


def test_a_trade_is_binances_trade_payload():
    assert payloads.trade(TRADE, event_ms=1_700_000_000_200) == {
        "e": "trade",
        "E": 1_700_000_000_200,
        "s": "BTCUSDT",
        "t": 12345,
        "p": "27000.10000000",
        "q": "0.50000000",
        "T": 1_700_000_000_123,
        "m": True,
        "M": True,
    }


def test_an_agg_trade_aggregates_exactly_one_trade_as_the_rest_api_does():
    assert payloads.agg_trade(TRADE, event_ms=1_700_000_000_200) == {
        "e": "aggTrade",
        "E": 1_700_000_000_200,
        "s": "BTCUSDT",
        "a": 12345,
        "p": "27000.10000000",
        "q": "0.50000000",
        "f": 12345,
        "l": 12345,
        "T": 1_700_000_000_123,
        "m": True,
        "M": True,
    }


def _candle() -> Candle:
    price = Decimal("100")
    candle = Candle("BTCUSDT", "1m", 1_700_000_040_000, 1_700_000_099_999, 7, 6, price, price, price, price)
    candle.add(Trade("BTCUSDT", 7, "100", "2", 1_700_000_041_000, False))  # taker bought
    candle.add(Trade("BTCUSDT", 8, "101.5", "1", 1_700_000_042_000, True))  # taker sold
    candle.add(Trade("BTCUSDT", 9, "99", "0.5", 1_700_000_043_000, False))
    return candle


def test_a_kline_payload_has_every_field_of_the_exchange_with_decimals_as_strings():
    payload = payloads.kline(_candle(), closed=False, event_ms=1_700_000_043_010)

    assert payload == {
        "e": "kline",
        "E": 1_700_000_043_010,
        "s": "BTCUSDT",
        "k": {
            "t": 1_700_000_040_000,
            "T": 1_700_000_099_999,
            "s": "BTCUSDT",
            "i": "1m",
            "f": 7,
            "L": 9,
            "o": "100.00000000",
            "c": "99.00000000",
            "h": "101.50000000",
            "l": "99.00000000",
            "v": "3.50000000",
            "n": 3,
            "x": False,
            "q": "351.00000000",  # 200 + 101.5 + 49.5
            "V": "2.50000000",
            "Q": "249.50000000",
            "B": "0",
        },
    }


def test_a_closed_kline_says_so():
    assert payloads.kline(_candle(), closed=True, event_ms=1)["k"]["x"] is True


def test_a_mini_ticker_is_the_rolling_window_and_a_quiet_one_opens_at_the_last_price():
    window = DayWindow(
        "BTCUSDT", Decimal("99"), Decimal("95"), Decimal("101"), Decimal("94"), Decimal("3"), Decimal("290"), 9
    )
    quiet = DayWindow("ETHUSDT", Decimal("2000"), None, None, None, Decimal(0), Decimal(0), -1)

    assert payloads.mini_ticker(window, event_ms=5) == {
        "e": "24hrMiniTicker",
        "E": 5,
        "s": "BTCUSDT",
        "c": "99.00000000",
        "o": "95.00000000",
        "h": "101.00000000",
        "l": "94.00000000",
        "v": "3.00000000",
        "q": "290.00000000",
    }
    assert payloads.mini_ticker(quiet, event_ms=5)["o"] == "2000.00000000"
    assert payloads.mini_ticker(quiet, event_ms=5)["v"] == "0.00000000"


def _order(**overrides) -> OrderView:
    created = {
        "order_id": ORDER_ID,
        "user_id": USER_ID,
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "client_order_id": "my-order-1",
        "time_in_force": "GTC",
        "quantity": "0.3",
        "price": "27000",
        "quote_order_qty": None,
        **overrides,
    }
    return OrderView.from_created(created, time_ms=1_700_000_000_000)


def test_an_accepted_order_is_a_new_execution_report():
    order = _order(order_number=42)
    order.working_ms = 1_700_000_000_050
    report = payloads.execution_report(
        order, "order.accepted", {"status": "NEW"}, event_ms=1_700_000_000_060, transaction_ms=1_700_000_000_050
    )

    assert report == {
        "e": "executionReport",
        "E": 1_700_000_000_060,
        "s": "BTCUSDT",
        "c": "my-order-1",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.30000000",
        "p": "27000.00000000",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": "NEW",
        "X": "NEW",
        "r": "NONE",
        "i": 42,
        "l": "0.00000000",
        "z": "0.00000000",
        "L": "0.00000000",
        "n": "0.00000000",
        "N": None,
        "T": 1_700_000_000_050,
        "t": -1,
        "I": 0,
        "w": True,
        "m": False,
        "M": False,
        "O": 1_700_000_000_000,
        "Z": "0.00000000",
        "Y": "0.00000000",
        "Q": "0.00000000",
        "V": "NONE",
        "W": 1_700_000_000_050,
    }


def test_a_fill_is_a_trade_execution_report_with_the_fill_and_the_running_totals():
    order = _order()
    order.executed_qty, order.cumulative_quote_qty = Decimal("0.1"), Decimal("2700")
    fill = {
        "fill_id": "f1",
        "price": "27000",
        "qty": "0.1",
        "quote_qty": "2700",
        "fee": "0.0001",
        "fee_asset": "BTC",
        "status": "PARTIALLY_FILLED",
        "remaining_qty": "0.2",
        "is_maker": True,
        "fill_number": 9,
    }

    report = payloads.execution_report(order, "order.filled", fill, event_ms=2, transaction_ms=1)

    assert {k: report[k] for k in ("x", "X", "l", "L", "z", "Z", "Y", "n", "N", "t", "m", "w", "i")} == {
        "x": "TRADE",
        "X": "PARTIALLY_FILLED",
        "l": "0.10000000",
        "L": "27000.00000000",
        "z": "0.10000000",
        "Z": "2700.00000000",
        "Y": "2700.00000000",
        "n": "0.00010000",
        "N": "BTC",
        "t": 9,
        "m": True,
        "w": True,
        "i": -1,  # order_svc's events do not carry Binance's orderId yet
    }


def test_a_rejection_for_want_of_funds_says_insufficient_balances_and_a_cancel_names_the_original_id():
    rejected = payloads.execution_report(
        _order(), "order.rejected", {"reason": "insufficient_funds"}, event_ms=1, transaction_ms=1
    )
    cancelled = payloads.execution_report(
        _order(), "order.cancelled", {"status": "CANCELED"}, event_ms=1, transaction_ms=1
    )
    expired = payloads.execution_report(
        _order(type="MARKET", price=None, time_in_force=None),
        "order.cancelled",
        {"status": "EXPIRED"},
        event_ms=1,
        transaction_ms=1,
    )

    assert (rejected["x"], rejected["X"], rejected["r"], rejected["w"]) == (
        "REJECTED",
        "REJECTED",
        "INSUFFICIENT_BALANCES",
        False,
    )
    assert (cancelled["x"], cancelled["X"], cancelled["C"], cancelled["w"]) == (
        "CANCELED",
        "CANCELED",
        "my-order-1",
        False,
    )
    assert (expired["x"], expired["X"], expired["o"], expired["f"], expired["p"]) == (
        "EXPIRED",
        "EXPIRED",
        "MARKET",
        "GTC",
        "0.00000000",
    )
    assert payloads.execution_report(_order(), "order.created", {}, event_ms=1, transaction_ms=1) is None


def test_an_account_position_lists_the_balances_the_event_carries():
    data = {"user_id": USER_ID, "balances": [{"asset": "USDT", "available": "9000", "locked": "1000.5"}]}

    assert payloads.account_position(data, event_ms=3, update_ms=2) == {
        "e": "outboundAccountPosition",
        "E": 3,
        "u": 2,
        "B": [{"a": "USDT", "f": "9000.00000000", "l": "1000.50000000"}],
    }
    assert (
        payloads.account_position({"user_id": USER_ID, "asset": "USDT", "amount": "5"}, event_ms=3, update_ms=2) is None
    )


def test_a_credit_is_a_balance_update_with_its_delta():
    data = {"user_id": USER_ID, "portfolio_id": "p", "asset": "USDT", "amount": "10000", "reason": "signup"}

    assert payloads.balance_update(data, event_ms=3, clear_ms=2) == {
        "e": "balanceUpdate",
        "E": 3,
        "a": "USDT",
        "d": "10000.00000000",
        "T": 2,
    }


def test_a_listen_key_expiry_is_binances_event():
    assert payloads.listen_key_expired("k" * 64, event_ms=1_699_596_037_418) == {
        "e": "listenKeyExpired",
        "E": "1699596037418",
        "listenKey": "k" * 64,
    }


@pytest.mark.parametrize(
    ("name", "kind", "symbol", "interval"),
    [
        ("btcusdt@trade", names.TRADE, "BTCUSDT", None),
        ("btcusdt@aggTrade", names.AGG_TRADE, "BTCUSDT", None),
        ("xrpeth@kline_1m", names.KLINE, "XRPETH", "1m"),
        ("xrpeth@kline_1M", names.KLINE, "XRPETH", "1M"),
        ("xrpeth@kline_15m", names.KLINE, "XRPETH", "15m"),
        ("bnbusdt@miniTicker", names.MINI_TICKER, "BNBUSDT", None),
        ("A" * 64, names.USER_DATA, "", None),
    ],
)
def test_stream_names_are_binances(name, kind, symbol, interval):
    stream = names.parse(name)

    assert (stream.kind, stream.symbol, stream.interval, stream.name) == (kind, symbol, interval, name)


@pytest.mark.parametrize(
    "name",
    ["BTCUSDT@trade", "btcusdt@trades", "btcusdt@kline_2m", "btcusdt@aggtrade", "@trade", "btcusdt", 7, None, ""],
)
def test_anything_else_is_no_stream(name):
    assert names.parse(name) is None


@pytest.mark.parametrize(
    ("interval", "at", "window"),
    [
        ("1m", 1_700_000_041_000, (1_700_000_040_000, 1_700_000_099_999)),
        ("1s", 1_700_000_041_500, (1_700_000_041_000, 1_700_000_041_999)),
        ("1h", 1_700_000_041_000, (1_699_999_200_000, 1_700_002_799_999)),
        ("3d", 0, (0, 3 * 86_400_000 - 1)),
        ("1w", 1_700_000_041_000, (1_699_833_600_000, 1_700_438_399_999)),  # Monday 2023-11-13 00:00 UTC
        ("1M", 1_700_000_041_000, (1_698_796_800_000, 1_701_388_799_999)),  # November 2023
        ("1M", 1_703_980_800_000, (1_701_388_800_000, 1_704_067_199_999)),  # December: the year turns after it
    ],
)
def test_kline_buckets_are_those_of_the_rest_klines(interval, at, window):
    assert bucket(interval, at) == window
