"""Existing Binance clients against the real streams server, offline: python-binance's BinanceSocketManager (raw and
combined sockets) and ccxt.pro's binance watch_trades / watch_ohlcv, pointed at the server's local URL."""

from __future__ import annotations

import asyncio
import time

import ccxt.pro as ccxtpro
import pytest
from binance import AsyncClient, BinanceSocketManager
from candles.trades import Trade

from streams.tests.conftest import publish_trades

pytestmark = pytest.mark.django_db(transaction=True)

HOUR_AGO = (time.time_ns() // 1_000_000 - 3_600_000) // 60_000 * 60_000


async def subscribed(server, *names: str, timeout: float = 20.0) -> None:
    """The client library gives no answer to wait for: wait until the server has the streams."""
    deadline = time.monotonic() + timeout
    while not all(server.hub.listening(n) for n in names):
        assert time.monotonic() < deadline, f"{names} never subscribed"
        await asyncio.sleep(0.05)


def test_python_binance_socket_manager_reads_trades_and_a_multiplex_socket(streams, symbol, kafka_bootstrap):
    lower = symbol.lower()

    def now() -> int:  # trades of now: not late for a minute the clock has closed
        return time.time_ns() // 1_000_000

    async def scenario():
        client = AsyncClient()  # no request is made: sockets only
        try:
            manager = BinanceSocketManager(client)
            manager.STREAM_URL = f"ws://{streams.address}/"
            async with manager.trade_socket(symbol) as trades:
                await subscribed(streams, f"{lower}@trade")
                publish_trades(kafka_bootstrap, [Trade(symbol, 21, "2.5", "4", now(), False)])
                trade = await asyncio.wait_for(trades.recv(), 20)
            async with manager.multiplex_socket([f"{lower}@aggTrade", f"{lower}@kline_1m"]) as multiplex:
                await subscribed(streams, f"{lower}@aggTrade", f"{lower}@kline_1m")
                publish_trades(kafka_bootstrap, [Trade(symbol, 22, "2.6", "1", now(), False)])
                combined = {}  # the kline of trade 21 (seen before: it seeds the stream) may come first
                while f"{lower}@aggTrade" not in combined or combined[f"{lower}@kline_1m"]["k"]["L"] != 22:
                    message = await asyncio.wait_for(multiplex.recv(), 20)
                    combined[message["stream"]] = message["data"]
            return trade, combined
        finally:
            await client.close_connection()

    trade, combined = asyncio.run(scenario())

    assert (trade["e"], trade["s"], trade["t"], trade["p"], trade["q"]) == (
        "trade",
        symbol,
        21,
        "2.50000000",
        "4.00000000",
    )
    assert combined[f"{lower}@aggTrade"]["a"] == 22
    assert combined[f"{lower}@kline_1m"]["k"]["c"] == "2.60000000"


def test_ccxt_pro_watches_trades_and_ohlcv(streams, symbol, kafka_bootstrap):
    base = symbol.removesuffix("USDT")
    unified = f"{base}/USDT"

    async def scenario():
        exchange = ccxtpro.binance({"enableRateLimit": False})
        try:
            exchange.urls["api"]["ws"]["spot"] = f"ws://{streams.address}/ws"
            # The markets as GET /api/v3/exchangeInfo would give them (order_svc's; not running here).
            exchange.options["crossMarginPairsData"] = exchange.options["isolatedMarginPairsData"] = []
            info = {
                "symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": "USDT", "baseAssetPrecision": 8,
                "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "filters": [],
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissionSets": [["SPOT"]],
            }  # fmt: skip
            market = exchange.parse_market(info)
            exchange.set_markets(market if isinstance(market, list) else [market])
            trades = asyncio.ensure_future(exchange.watch_trades(unified))
            await subscribed(streams, f"{symbol.lower()}@trade")
            publish_trades(kafka_bootstrap, [Trade(symbol, 31, "5", "2", HOUR_AGO, True)])
            watched = await asyncio.wait_for(trades, 20)
            ohlcv = asyncio.ensure_future(exchange.watch_ohlcv(unified, "1m"))
            await subscribed(streams, f"{symbol.lower()}@kline_1m")
            await asyncio.sleep(1.1)  # the exchange's five messages a second: ccxt sends one SUBSCRIBE per watch
            publish_trades(kafka_bootstrap, [Trade(symbol, 32, "6", "1", HOUR_AGO + 61_000, False)])
            candles = await asyncio.wait_for(ohlcv, 20)
            while candles[-1][0] != HOUR_AGO + 60_000:  # the minute of trade 31 (it seeds the stream) comes first
                candles = await asyncio.wait_for(exchange.watch_ohlcv(unified, "1m"), 20)
            return watched, candles
        finally:
            await exchange.close()

    watched, candles = asyncio.run(scenario())

    assert [(t["symbol"], t["id"], t["price"], t["amount"], t["side"]) for t in watched] == [
        (unified, "31", 5.0, 2.0, "sell")
    ]
    assert candles[-1][0] == HOUR_AGO + 60_000 and candles[-1][1:5] == [6.0, 6.0, 6.0, 6.0]
