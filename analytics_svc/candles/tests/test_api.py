"""The public market-data API: Binance-compatible klines and ticker, browsable candles, Binance-like errors."""

from __future__ import annotations

import pytest

from candles.models import Candle1m
from candles.services import trades_apply
from candles.trades import Trade
from common.testing.http import http

pytestmark = pytest.mark.django_db(transaction=True)

T0 = 1_700_000_040_000


@pytest.fixture
def market():
    """Ten minutes of BTCUSDT, one trade a minute, prices 100..109."""
    trades_apply(trades=[Trade("BTCUSDT", i, str(100 + i), "0.5", T0 + i * 60_000 + 1, False) for i in range(10)])


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("symbol=NOPEUSDT&interval=1m", -1121, "Invalid symbol."),
        ("symbol=BTCUSDT&interval=7m", -1120, "Invalid interval"),
        ("symbol=BTCUSDT&interval=1m&limit=5000", -1130, "Data sent for parameter 'limit' is not valid"),
        ("symbol=BTCUSDT&interval=1m&limit=0", -1130, "Data sent for parameter 'limit' is not valid"),
        (f"symbol=BTCUSDT&interval=1m&startTime={T0 + 1}&endTime={T0}", -1023, "Start time is greater than end time."),
        ("symbol=BTCUSDT&interval=1m&startTime=yesterday", -1130, "Data sent for parameter 'startTime' is not valid"),
        # int() takes these; no client means them
        ("symbol=BTCUSDT&interval=1m&startTime=%20123", -1130, "Data sent for parameter 'startTime' is not valid"),
        ("symbol=BTCUSDT&interval=1m&startTime=1_000", -1130, "Data sent for parameter 'startTime' is not valid"),
        ("symbol=BTCUSDT&interval=1m&endTime=%D9%A1", -1130, "Data sent for parameter 'endTime' is not valid"),
        ("symbol=BTCUSDT&interval=1m&endTime=99999999999999999999", -1130, "Data sent for parameter 'endTime'"),
        ("interval=1m", -1102, "Mandatory parameter 'symbol'"),
        ("symbol=BTCUSDT", -1102, "Mandatory parameter 'interval'"),
        ("symbol=btc%20usdt&interval=1m", -1100, "Illegal characters found in parameter 'symbol'"),
    ],
)
def test_bad_klines_parameters_answer_400_with_binances_error(live_server, market, query, code, message):
    result = http("GET", f"{live_server.url}/api/v3/klines?{query}")

    assert result.status == 400
    body = result.json()
    assert set(body) == {"code", "msg"} and body["code"] == code
    assert body["msg"].startswith(message)


def test_klines_default_to_the_latest_candles_oldest_first(live_server, market):
    rows = http("GET", f"{live_server.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=3").json()

    assert [r[0] for r in rows] == [T0 + 7 * 60_000, T0 + 8 * 60_000, T0 + 9 * 60_000]
    assert rows[-1] == [
        T0 + 9 * 60_000,
        "109.00000000",
        "109.00000000",
        "109.00000000",
        "109.00000000",
        "0.50000000",
        T0 + 10 * 60_000 - 1,
        "54.50000000",
        1,
        "0.50000000",
        "54.50000000",
        "0",
    ]


def test_klines_between_start_and_end_time_include_both_ends(live_server, market):
    start, end = T0 + 2 * 60_000, T0 + 4 * 60_000
    url = f"{live_server.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={start}&endTime={end}"

    rows = http("GET", url).json()

    assert [r[0] for r in rows] == [start, start + 60_000, end]
    assert [r[1] for r in rows] == ["102.00000000", "103.00000000", "104.00000000"]


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        # Past what a datetime holds (year 9999): these once overflowed into a 500.
        ("startTime=253402300800000", []),
        (f"startTime={T0 + 8 * 60_000}&endTime=100000000000000000", [T0 + 8 * 60_000, T0 + 9 * 60_000]),
        (f"startTime={T0 + 9 * 60_000}&endTime=9223372036854775807", [T0 + 9 * 60_000]),
    ],
)
def test_times_past_year_9999_mean_until_the_end_of_time(live_server, market, bounds, expected):
    result = http("GET", f"{live_server.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&{bounds}")

    assert result.status == 200, result.text
    assert [r[0] for r in result.json()] == expected


def test_klines_of_a_rollup_interval(live_server, market):
    rows = http("GET", f"{live_server.url}/api/v3/klines?symbol=BTCUSDT&interval=5m").json()

    assert [(r[0] % 300_000, r[8]) for r in rows] == [(0, n) for n in (1, 5, 4)]  # T0 is minute 4 of its 5
    assert rows[1][1:5] == ["101.00000000", "105.00000000", "101.00000000", "105.00000000"]


def test_ticker_price_is_the_last_trade(live_server, market):
    one = http("GET", f"{live_server.url}/api/v3/ticker/price?symbol=BTCUSDT")
    every = http("GET", f"{live_server.url}/api/v3/ticker/price")
    unknown = http("GET", f"{live_server.url}/api/v3/ticker/price?symbol=NOPE")

    assert one.status == 200 and one.json() == {"symbol": "BTCUSDT", "price": "109.00000000"}
    assert every.json() == [{"symbol": "BTCUSDT", "price": "109.00000000"}]
    assert unknown.status == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}


def test_browsable_candles_are_the_same_data_as_objects(live_server, market):
    result = http("GET", f"{live_server.url}/api/candles/?symbol=BTCUSDT&interval=1m&limit=2")

    assert result.status == 200
    first = result.json()[0]
    assert first == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "open_time": "2023-11-14T22:22:00Z",
        "close_time": "2023-11-14T22:22:59.999000Z",
        "open": "108",
        "high": "108",
        "low": "108",
        "close": "108",
        "volume": "0.5",
        "quote_volume": "54",
        "trades": 1,
        "taker_buy_volume": "0.5",
        "taker_buy_quote_volume": "54",
    }
    html = http("GET", f"{live_server.url}/api/candles/?symbol=BTCUSDT", headers={"Accept": "text/html"})
    assert html.status == 200 and "Candle List" in html.text


def test_browsable_candles_refuse_bad_parameters_in_the_platforms_error_shape(live_server, market):
    bad_interval = http("GET", f"{live_server.url}/api/candles/?symbol=BTCUSDT&interval=7m")
    unknown = http("GET", f"{live_server.url}/api/candles/?symbol=NOPE")

    assert bad_interval.status == 400 and bad_interval.json()["code"] == "invalid"
    assert bad_interval.json()["message"].startswith("interval:")
    assert unknown.status == 400 and unknown.json()["code"] == "invalid_symbol"


def test_the_market_data_endpoints_need_no_login(live_server, market):
    assert http("GET", f"{live_server.url}/api/v3/klines?symbol=BTCUSDT&interval=1h").status == 200
    assert (
        http("GET", f"{live_server.url}/chart/?symbol=BTCUSDT&interval=1m", headers={"Accept": "text/html"}).status
        == 200
    )
    assert Candle1m.objects.count() == 10


def test_the_admin_lists_candles_of_every_interval_and_filters_them(live_server, market, admin_client):
    every = admin_client.get("/admin/candles/candlerow/")
    hourly = admin_client.get("/admin/candles/candlerow/?interval=1h&symbol=BTCUSDT")
    marks = admin_client.get("/admin/candles/symbolcursor/")

    assert every.status_code == 200 and hourly.status_code == 200 and marks.status_code == 200
    assert len(every.context["cl"].result_list) == 10 + 3 + 2 + 1
    assert [c.interval for c in hourly.context["cl"].result_list] == ["1h"]
    assert b"candles/candlerow/add/" not in every.content
