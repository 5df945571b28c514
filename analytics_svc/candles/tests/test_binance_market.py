"""Binance's public market data from analytics_svc: klines of every interval rolled up from the stored candles
(hand-computed), uiKlines, recent and aggregate trades, the average price, 24 hour tickers, ping/time, and
Binance's error codes for bad parameters."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from candles.models import MarketTrade
from candles.services import market_trades_purge, trades_apply
from candles.trades import Trade

pytestmark = pytest.mark.django_db


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# (id, time, price, qty, buyer is maker). 2024-01-01 is a Monday.
TRADES = [
    (1, "2023-12-31T23:59:00", "95", "1", False),  # a Sunday: the week and the month before
    (2, "2024-01-01T00:01:10", "100", "1", False),
    (3, "2024-01-01T00:03:00", "110", "2", True),
    (4, "2024-01-01T00:07:30", "90", "1", False),
    (5, "2024-01-01T01:30:00", "120", "1", False),
    (6, "2024-01-02T10:00:00", "130", "0.5", False),
    (7, "2024-01-08T00:00:00", "140", "1", True),  # the next Monday
    (8, "2024-02-01T00:00:00", "150", "1", False),  # a Thursday
]


@pytest.fixture
def market():
    trades_apply(trades=[Trade("BTCUSDT", i, p, q, ms(at), m) for i, at, p, q, m in TRADES])


def get(client, path: str, **params):
    return client.get(path, params)


def klines(client, interval: str, **params) -> list[list]:
    response = get(client, "/api/v3/klines", symbol="BTCUSDT", interval=interval, **params)
    assert response.status_code == 200, response.content
    return response.json()


def ohlc(row: list) -> tuple:
    """(open time, open, high, low, close, volume, trades)"""
    return row[0], row[1], row[2], row[3], row[4], row[5], row[8]


def test_5m_is_read_as_stored_and_3m_is_rolled_up_from_the_minutes(client, market):
    five = klines(client, "5m", endTime=ms("2024-01-01T00:59:00"))
    three = klines(client, "3m", endTime=ms("2024-01-01T00:59:00"))

    assert [ohlc(r) for r in five] == [
        (ms("2023-12-31T23:55:00"), "95.00000000", "95.00000000", "95.00000000", "95.00000000", "1.00000000", 1),
        (ms("2024-01-01T00:00:00"), "100.00000000", "110.00000000", "100.00000000", "110.00000000", "3.00000000", 2),
        (ms("2024-01-01T00:05:00"), "90.00000000", "90.00000000", "90.00000000", "90.00000000", "1.00000000", 1),
    ]
    opens = ("2023-12-31T23:57:00", "2024-01-01T00:00:00", "2024-01-01T00:03:00", "2024-01-01T00:06:00")
    assert [r[0] for r in three] == [ms(t) for t in opens]
    assert three[1] == [
        ms("2024-01-01T00:00:00"),
        "100.00000000",
        "100.00000000",
        "100.00000000",
        "100.00000000",
        "1.00000000",
        ms("2024-01-01T00:03:00") - 1,
        "100.00000000",
        1,
        "1.00000000",
        "100.00000000",
        "0",
    ]


def test_1h_and_1d_roll_up_the_hours_with_every_kline_field(client, market):
    hours = klines(client, "1h", endTime=ms("2024-01-01T23:00:00"))
    days = klines(client, "1d")

    assert [ohlc(r) for r in hours] == [
        (ms("2023-12-31T23:00:00"), "95.00000000", "95.00000000", "95.00000000", "95.00000000", "1.00000000", 1),
        (ms("2024-01-01T00:00:00"), "100.00000000", "110.00000000", "90.00000000", "90.00000000", "4.00000000", 3),
        (ms("2024-01-01T01:00:00"), "120.00000000", "120.00000000", "120.00000000", "120.00000000", "1.00000000", 1),
    ]
    assert [r[0] for r in days] == [
        ms(d) for d in ("2023-12-31T00:00:00", "2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-08T00:00:00",
                        "2024-02-01T00:00:00")
    ]  # fmt: skip
    # 1 Jan: trades 2..5. Quote volume 100 + 220 + 90 + 120; taker buys (not maker) 2, 4, 5.
    assert days[1] == [
        ms("2024-01-01T00:00:00"),
        "100.00000000",
        "120.00000000",
        "90.00000000",
        "120.00000000",
        "5.00000000",
        ms("2024-01-02T00:00:00") - 1,
        "530.00000000",
        4,
        "3.00000000",
        "310.00000000",
        "0",
    ]


def test_1w_buckets_open_on_mondays_and_1M_on_the_first_of_the_month(client, market):
    weeks = klines(client, "1w")
    months = klines(client, "1M")

    assert [ohlc(r) for r in weeks] == [
        (ms("2023-12-25T00:00:00"), "95.00000000", "95.00000000", "95.00000000", "95.00000000", "1.00000000", 1),
        (ms("2024-01-01T00:00:00"), "100.00000000", "130.00000000", "90.00000000", "130.00000000", "5.50000000", 5),
        (ms("2024-01-08T00:00:00"), "140.00000000", "140.00000000", "140.00000000", "140.00000000", "1.00000000", 1),
        (ms("2024-01-29T00:00:00"), "150.00000000", "150.00000000", "150.00000000", "150.00000000", "1.00000000", 1),
    ]
    assert [r[6] for r in weeks][1] == ms("2024-01-08T00:00:00") - 1
    assert [ohlc(r) for r in months] == [
        (ms("2023-12-01T00:00:00"), "95.00000000", "95.00000000", "95.00000000", "95.00000000", "1.00000000", 1),
        (ms("2024-01-01T00:00:00"), "100.00000000", "140.00000000", "90.00000000", "140.00000000", "6.50000000", 6),
        (ms("2024-02-01T00:00:00"), "150.00000000", "150.00000000", "150.00000000", "150.00000000", "1.00000000", 1),
    ]
    assert [r[6] for r in months] == [ms("2024-01-01T00:00:00") - 1, ms("2024-02-01T00:00:00") - 1,
                                      ms("2024-03-01T00:00:00") - 1]  # fmt: skip


def test_a_time_zone_moves_the_buckets_and_leaves_the_times_utc(client, market):
    days = klines(client, "1d", timeZone="+08:00", endTime=ms("2024-01-02T00:00:00"))
    months = klines(client, "1M", timeZone="8")
    hours = klines(client, "1h", timeZone="05:45", endTime=ms("2024-01-01T01:15:00"))

    # Local 1 Jan opens 31 Dec 16:00 UTC and holds trade 1 (07:59 local) with 2..5.
    assert [ohlc(r) for r in days] == [
        (ms("2023-12-31T16:00:00"), "95.00000000", "120.00000000", "90.00000000", "120.00000000", "6.00000000", 5),
        (ms("2024-01-01T16:00:00"), "130.00000000", "130.00000000", "130.00000000", "130.00000000", "0.50000000", 1),
    ]
    assert [(r[0], r[6], r[8]) for r in months] == [
        (ms("2023-12-31T16:00:00"), ms("2024-01-31T16:00:00") - 1, 7),
        (ms("2024-01-31T16:00:00"), ms("2024-02-29T16:00:00") - 1, 1),
    ]
    # +05:45: hours open at :15 UTC, so they are rolled up from the 15 minute candles.
    assert [ohlc(r) for r in hours] == [
        (ms("2023-12-31T23:15:00"), "95.00000000", "110.00000000", "90.00000000", "90.00000000", "5.00000000", 4),
        (ms("2024-01-01T01:15:00"), "120.00000000", "120.00000000", "120.00000000", "120.00000000", "1.00000000", 1),
    ]


def test_limits_and_bounds_pick_whole_buckets(client, market):
    latest = klines(client, "1d", limit=2)
    from_start = klines(client, "1d", startTime=ms("2024-01-01T00:00:00"), limit=2)
    mid_bucket = klines(client, "1d", startTime=ms("2024-01-01T00:30:00"), limit=1)
    up_to_end = klines(client, "1w", endTime=ms("2024-01-07T23:59:59"), limit=1)

    assert [r[0] for r in latest] == [ms("2024-01-08T00:00:00"), ms("2024-02-01T00:00:00")]
    assert [r[0] for r in from_start] == [ms("2024-01-01T00:00:00"), ms("2024-01-02T00:00:00")]
    assert [r[0] for r in mid_bucket] == [ms("2024-01-02T00:00:00")]  # a bucket opening before the start is out
    assert [(r[0], r[8]) for r in up_to_end] == [(ms("2024-01-01T00:00:00"), 5)]  # whole, though it ends later


def test_ui_klines_answer_the_klines_rows(client, market):
    ui = get(client, "/api/v3/uiKlines", symbol="BTCUSDT", interval="1d")

    assert ui.status_code == 200
    assert ui.json() == klines(client, "1d")


def test_a_rolled_up_kline_request_costs_two_queries(client, market, django_assert_num_queries):
    with django_assert_num_queries(2):  # the symbol's existence, the rollup
        klines(client, "1M", timeZone="-3:30")


def test_1s_klines_come_from_the_kept_trades(client):
    base = ms("2024-03-01T12:00:00")
    trades_apply(
        trades=[
            Trade("ETHUSDT", 1, "10", "1", base + 100, False),
            Trade("ETHUSDT", 2, "12", "1", base + 900, True),
            Trade("ETHUSDT", 3, "11", "2", base + 1500, False),
        ]
    )

    rows = get(client, "/api/v3/klines", symbol="ETHUSDT", interval="1s").json()

    assert rows == [
        [base, "10.00000000", "12.00000000", "10.00000000", "12.00000000", "2.00000000", base + 999, "22.00000000",
         2, "1.00000000", "10.00000000", "0"],
        [base + 1000, "11.00000000", "11.00000000", "11.00000000", "11.00000000", "2.00000000", base + 1999,
         "22.00000000", 1, "2.00000000", "22.00000000", "0"],
    ]  # fmt: skip


def test_recent_trades_are_the_latest_oldest_first(client, market):
    response = get(client, "/api/v3/trades", symbol="BTCUSDT", limit=2)

    assert response.status_code == 200
    assert response.json() == [
        {"id": 7, "price": "140.00000000", "qty": "1.00000000", "quoteQty": "140.00000000",
         "time": ms("2024-01-08T00:00:00"), "isBuyerMaker": True, "isBestMatch": True},
        {"id": 8, "price": "150.00000000", "qty": "1.00000000", "quoteQty": "150.00000000",
         "time": ms("2024-02-01T00:00:00"), "isBuyerMaker": False, "isBestMatch": True},
    ]  # fmt: skip


def test_aggregate_trades_from_an_id_or_a_time(client, market):
    from_id = get(client, "/api/v3/aggTrades", symbol="BTCUSDT", fromId=6, limit=2).json()
    in_hour = get(
        client, "/api/v3/aggTrades", symbol="BTCUSDT", startTime=ms("2024-01-01T00:00:00"),
        endTime=ms("2024-01-01T01:00:00"),
    ).json()  # fmt: skip

    assert [(t["a"], t["f"], t["l"], t["p"], t["m"]) for t in from_id] == [
        (6, 6, 6, "130.00000000", False),
        (7, 7, 7, "140.00000000", True),
    ]
    assert [t["a"] for t in in_hour] == [2, 3, 4]


def test_the_trades_kept_are_forgotten_after_25_hours():
    now = int(time.time() * 1000)
    trades_apply(
        trades=[Trade("BTCUSDT", 1, "1", "1", now - 26 * 3_600_000, False), Trade("BTCUSDT", 2, "1", "1", now, False)]
    )

    assert market_trades_purge() == 1
    assert list(MarketTrade.objects.values_list("trade_id", flat=True)) == [2]


def test_average_price_is_the_last_five_minutes_volume_weighted(client):
    now = int(time.time() * 1000)
    trades_apply(
        trades=[
            Trade("ETHUSDT", 1, "50", "9", now - 10 * 60_000, False),  # older than 5 minutes: out
            Trade("ETHUSDT", 2, "100", "3", now - 2 * 60_000, False),
            Trade("ETHUSDT", 3, "120", "1", now - 60_000, True),
        ]
    )

    body = get(client, "/api/v3/avgPrice", symbol="ETHUSDT").json()

    assert body == {"mins": 5, "price": "105.00000000", "closeTime": now - 60_000}


def test_average_price_of_a_quiet_market_is_its_last_price(client, market):
    assert get(client, "/api/v3/avgPrice", symbol="BTCUSDT").json() == {
        "mins": 5,
        "price": "150.00000000",
        "closeTime": ms("2024-02-01T00:00:00"),
    }


@pytest.fixture
def day():
    """BTCUSDT: one trade before the 24 hours, three in them."""
    now = int(time.time() * 1000)
    trades_apply(
        trades=[
            Trade("BTCUSDT", 10, "100", "1", now - 25 * 3_600_000, False),
            Trade("BTCUSDT", 11, "110", "1", now - 23 * 3_600_000, False),
            Trade("BTCUSDT", 12, "90", "2", now - 3_600_000, True),
            Trade("BTCUSDT", 13, "120", "1", now - 60_000, False),
        ]
    )
    trades_apply(trades=[Trade("ETHUSDT", 1, "5", "1", now - 48 * 3_600_000, False)])  # nothing for two days


def test_24hr_ticker_figures(client, day):
    body = get(client, "/api/v3/ticker/24hr", symbol="BTCUSDT").json()

    now = body["closeTime"]
    assert abs(now - time.time() * 1000) < 10_000
    assert body == {
        "symbol": "BTCUSDT",
        "priceChange": "10.00000000",
        "priceChangePercent": "9.091",
        "weightedAvgPrice": "102.50000000",  # 410 / 4
        "prevClosePrice": "100.00000000",
        "lastPrice": "120.00000000",
        "lastQty": "1.00000000",
        "bidPrice": "0.00000000",
        "bidQty": "0.00000000",
        "askPrice": "0.00000000",
        "askQty": "0.00000000",
        "openPrice": "110.00000000",
        "highPrice": "120.00000000",
        "lowPrice": "90.00000000",
        "volume": "4.00000000",
        "quoteVolume": "410.00000000",
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": 11,
        "lastId": 13,
        "count": 3,
    }


def test_24hr_ticker_of_a_symbol_without_trades_in_the_window(client, day):
    body = get(client, "/api/v3/ticker/24hr", symbol="ETHUSDT", type="MINI").json()

    assert {k: v for k, v in body.items() if k not in ("openTime", "closeTime")} == {
        "symbol": "ETHUSDT",
        "openPrice": "0.00000000",
        "highPrice": "0.00000000",
        "lowPrice": "0.00000000",
        "lastPrice": "5.00000000",
        "volume": "0.00000000",
        "quoteVolume": "0.00000000",
        "firstId": -1,
        "lastId": -1,
        "count": 0,
    }


def test_24hr_tickers_of_every_symbol_or_a_list_in_one_query(client, day, django_assert_num_queries):
    with django_assert_num_queries(1):
        every = get(client, "/api/v3/ticker/24hr").json()
    listed = get(client, "/api/v3/ticker/24hr", symbols='["ETHUSDT","BTCUSDT"]').json()

    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT"]
    assert [t["symbol"] for t in listed] == ["BTCUSDT", "ETHUSDT"]
    assert listed[0]["count"] == 3


def test_ticker_price_takes_a_symbols_list(client, day):
    body = client.get("/api/v3/ticker/price?symbols=" + quote(json.dumps(["ETHUSDT"]), safe="")).json()
    plain = get(client, "/api/v3/ticker/price", symbols='["BTCUSDT", "ETHUSDT"]').json()

    assert body == [{"symbol": "ETHUSDT", "price": "5.00000000"}]
    assert plain == [{"symbol": "BTCUSDT", "price": "120.00000000"}, {"symbol": "ETHUSDT", "price": "5.00000000"}]


def test_ping_and_time(client):
    before = int(time.time() * 1000)

    assert get(client, "/api/v3/ping").json() == {}
    assert before <= get(client, "/api/v3/time").json()["serverTime"] <= int(time.time() * 1000)


@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        ("klines", {"symbol": "NOPE", "interval": "1d"}, -1121, "Invalid symbol."),
        ("klines", {"symbol": "BTCUSDT", "interval": "2d"}, -1120, "Invalid interval."),
        ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, -1130, "Data sent for parameter 'limit'"),
        (
            "klines",
            {"symbol": "BTCUSDT", "interval": "1d", "timeZone": "15:00"},
            -1130,
            "Data sent for parameter 'timeZone'",
        ),
        ("klines", {"symbol": "BTCUSDT", "interval": "1d", "timeZone": "1:60"}, -1130, "Data sent for parameter"),
        ("uiKlines", {"symbol": "BTCUSDT"}, -1102, "Mandatory parameter 'interval'"),
        ("uiKlines", {"symbol": "BTCUSDT", "interval": "1d", "startTime": "--5"}, -1130, "Data sent for parameter"),
        ("klines", {"symbol": "BTCUSDT", "interval": "1d", "timeZone": "8\n"}, -1130, "Data sent for parameter"),
        ("trades", {"symbol": "BTCUSDT", "limit": "0"}, -1130, "Data sent for parameter 'limit'"),
        ("trades", {}, -1102, "Mandatory parameter 'symbol'"),
        ("aggTrades", {"symbol": "BTCUSDT", "startTime": "0", "endTime": "3600001"}, -1127, "More than 1 hours"),
        ("avgPrice", {"symbol": "btcusdt"}, -1100, "Illegal characters found in parameter 'symbol'"),
        ("ticker/24hr", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1128, "Parameter 'symbol' and 'symbols'"),
        ("ticker/24hr", {"symbols": "BTCUSDT"}, -1100, "Illegal characters found in parameter 'symbols'"),
        ("ticker/24hr", {"symbols": '["BTCUSDT","BTCUSDT"]'}, -1151, "Symbol is present multiple times"),
        ("ticker/24hr", {"symbols": '["BTCUSDT","NOPE"]'}, -1121, "Invalid symbol."),
        ("ticker/24hr", {"type": "HUGE"}, -1139, "Invalid ticker type."),
        ("ticker/price", {"symbols": "[]"}, -1102, "Mandatory parameter 'symbols'"),
    ],
)
def test_bad_parameters_get_binances_codes(client, market, path, params, code, message):
    response = get(client, f"/api/v3/{path}", **params)

    assert response.status_code == 400
    assert set(response.json()) == {"code", "msg"}
    assert response.json()["code"] == code
    assert response.json()["msg"].startswith(message)


def test_a_parameter_sent_twice_is_refused(client, market):
    response = client.get("/api/v3/trades?symbol=BTCUSDT&symbol=ETHUSDT")

    assert response.status_code == 400 and response.json()["code"] == -1101
