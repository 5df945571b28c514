"""A real Binance client (ccxt) pointed at the gateway reads the platform's public /api/v3: markets from order_svc's
exchangeInfo, the server time, klines of several intervals, 24 hour tickers and trades from analytics_svc, and the
platform's own order book from order_svc, each path routed by the gateway to the service that owns its data.

XRPETH carries the market data (no other e2e module trades it); BTCUSDT the book, built by a trader's resting
orders after every open order of earlier modules is cancelled.
"""

from __future__ import annotations

import time
from decimal import Decimal

import ccxt
import pytest

from common.testing.http import http
from tests.e2e.conftest import manage_all
from tests.e2e.system import System, Trader, binance_exchange, publish_trades, until

XRP_TRADES = [("0.00030000", "100"), ("0.00031000", "50"), ("0.00029000", "10")]


@pytest.fixture(scope="module")
def system(log_dir):
    running = System(log_dir, env={"TRACING_ENABLED": "false"})
    try:
        running.start_all()
        running.cancel_open_orders()  # an empty book: the depth is this module's orders
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def gateway(system, watcher) -> str:
    url = f"http://127.0.0.1:{manage_all.infra.gateway_port()}"
    for path, service in (
        ("/api/v3/ping", "analytics_svc"),
        ("/api/v3/exchangeInfo", "order_svc"),
        ("/api/v3/depth?symbol=BTCUSDT", "order_svc"),
        ("/api/v3/ticker/bookTicker", "order_svc"),
        ("/api/v3/ticker/24hr", "analytics_svc"),
    ):
        until(
            lambda p=path, s=service: http("GET", f"{url}{p}").headers.get("X-Served-By", "").startswith(f"{s}@"),
            timeout=60,
            what=f"the gateway to route {path} to {service}",
        )
    return url


@pytest.fixture(scope="module")
def exchange(gateway) -> ccxt.binance:
    return binance_exchange(gateway)


@pytest.fixture(scope="module")
def xrp_market(system) -> int:
    """Three XRPETH trades, folded into candles; returns when the last one was published (ms)."""
    publish_trades("XRPETH", XRP_TRADES)
    published = int(time.time() * 1000)
    ticker = f"{system.urls['analytics_svc']}/api/v3/ticker/price?symbol=XRPETH"
    until(
        lambda: http("GET", ticker).status == 200 and http("GET", ticker).json()["price"] == "0.00029000",
        timeout=60,
        what="analytics_svc to fold the XRPETH trades",
    )
    return published


@pytest.fixture(scope="module")
def btc_book(system) -> None:
    """A trader buys a little BTC, then rests three bids and two asks far from any price other modules trade at."""
    trader = Trader.register(system)
    trader.wait_funded()
    bought = trader.place(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.00200", price="60000.00"
    )
    assert bought.status == 201, bought.text
    trader.wait_status(bought.json()["orderId"], "NEW")
    publish_trades("BTCUSDT", [("59000.00", "0.002")])
    trader.wait_status(bought.json()["orderId"], "FILLED")
    until(lambda: trader.balances().get("BTC", (0, 0))[0] > 0, timeout=60, what="the BTC to settle")
    for side, quantity, price in (
        ("BUY", "0.01000", "1000.00"),
        ("BUY", "0.02000", "1000.00"),
        ("BUY", "0.03000", "999.50"),
        ("SELL", "0.00100", "900000.00"),
        ("SELL", "0.00050", "950000.00"),
    ):
        placed = trader.place(
            symbol="BTCUSDT", side=side, type="LIMIT", timeInForce="GTC", quantity=quantity, price=price
        )
        assert placed.status == 201, placed.text
        trader.wait_status(placed.json()["orderId"], "NEW")


def test_load_markets_reads_the_symbols_and_their_filters(exchange):
    markets = exchange.load_markets(reload=True)

    assert {"BTC/USDT", "ETH/USDT", "BNB/USDT", "XRP/ETH"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"], btc["spot"], btc["active"]) == ("BTCUSDT", "BTC", "USDT", True, True)
    assert btc["precision"] == {"amount": 0.00001, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["price"] == {"min": 0.01, "max": 1000000.0}
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["market"] == {"min": 0.00001, "max": 9000.0}


def test_fetch_time_is_the_servers_clock(exchange):
    assert abs(exchange.fetch_time() - time.time() * 1000) < 5_000


@pytest.mark.parametrize("timeframe", ["1m", "3m", "5m", "1h", "4h", "1d", "1w", "1M"])
def test_fetch_ohlcv_rolls_the_trades_up_in_every_interval(exchange, xrp_market, timeframe):
    candles = exchange.fetch_ohlcv("XRP/ETH", timeframe)

    assert candles, timeframe
    assert sum(c[5] for c in candles) == pytest.approx(160)  # every XRPETH trade, in whichever buckets
    assert candles[-1][4] == pytest.approx(0.00029)  # the last close is the last trade
    assert max(c[2] for c in candles) == pytest.approx(0.00031)
    assert all(c[0] <= xrp_market for c in candles)


def test_fetch_ticker_is_the_24_hour_window(exchange, xrp_market):
    ticker = exchange.fetch_ticker("XRP/ETH")

    assert ticker["symbol"] == "XRP/ETH"
    assert (ticker["open"], ticker["high"], ticker["low"], ticker["last"]) == pytest.approx(
        (0.0003, 0.00031, 0.00029, 0.00029)
    )
    assert ticker["baseVolume"] == pytest.approx(160)
    assert ticker["quoteVolume"] == pytest.approx(0.03 + 0.0155 + 0.0029)
    assert ticker["change"] == pytest.approx(-0.00001)
    assert abs(ticker["timestamp"] - time.time() * 1000) < 60_000


@pytest.mark.parametrize("method", [None, "publicGetTrades"])
def test_fetch_trades_through_aggregate_or_recent_trades(exchange, xrp_market, method):
    params = {"fetchTradesMethod": method} if method else {}

    trades = exchange.fetch_trades("XRP/ETH", params=params)

    assert [t["price"] for t in trades] == pytest.approx([float(p) for p, _ in XRP_TRADES])
    assert [t["amount"] for t in trades] == pytest.approx([float(q) for _, q in XRP_TRADES])
    assert all(t["side"] == "buy" for t in trades)  # published as taker buys (the buyer was not the maker)
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)


def test_fetch_order_book_is_the_resting_limit_orders_by_level(exchange, btc_book):
    book = exchange.fetch_order_book("BTC/USDT")

    assert book["bids"] == [[1000.0, 0.03], [999.5, 0.03]]
    assert book["asks"] == [[900000.0, 0.001], [950000.0, 0.0005]]
    assert isinstance(book["nonce"], int) and book["nonce"] > 0
    assert exchange.fetch_order_book("BTC/USDT", limit=1)["bids"] == [[1000.0, 0.03]]


def test_fetch_bids_asks_is_the_best_level(exchange, btc_book):
    best = exchange.fetch_bids_asks(["BTC/USDT"])["BTC/USDT"]

    assert (best["bid"], best["bidVolume"], best["ask"], best["askVolume"]) == (1000.0, 0.03, 900000.0, 0.001)


def test_an_unknown_symbol_is_binances_invalid_symbol(gateway):
    result = http("GET", f"{gateway}/api/v3/klines?symbol=NOPEUSDT&interval=1m")
    depth = http("GET", f"{gateway}/api/v3/depth?symbol=NOPEUSDT")

    assert (result.status, result.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert (depth.status, depth.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_the_amounts_are_binances_decimal_strings(gateway, xrp_market):
    kline = http("GET", f"{gateway}/api/v3/klines?symbol=XRPETH&interval=1d").json()[-1]
    ticker = http("GET", f"{gateway}/api/v3/ticker/24hr?symbol=XRPETH").json()

    assert kline[1] == "0.00030000" and kline[5] == "160.00000000" and isinstance(kline[8], int)
    assert ticker["weightedAvgPrice"] == format(Decimal("0.0484") / 160, ".8f")
