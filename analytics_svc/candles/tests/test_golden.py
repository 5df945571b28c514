"""Golden test: Binance's real XRPETH trades replayed through feed -> Kafka -> consumer -> tables -> klines API
give Binance's own candles, value for value, as decimals."""

from __future__ import annotations

import signal
import time
from decimal import Decimal

import pytest

from candles.models import CANDLE_MODELS, SymbolCursor
from candles.tests.conftest import (
    GOLDEN_LAST_ID,
    GOLDEN_SYMBOL,
    GOLDEN_TRADE_COUNT,
    Kline,
    read_klines,
    read_trades,
    rollup,
)
from common.testing.http import http

pytestmark = pytest.mark.django_db(transaction=True)


def fetch_klines(base_url: str, interval: str) -> list[list]:
    """Every candle of the golden symbol through the public API, page by page as a Binance client does."""
    rows: list[list] = []
    start = 0
    while True:
        result = http(
            "GET", f"{base_url}/api/v3/klines?symbol={GOLDEN_SYMBOL}&interval={interval}&startTime={start}&limit=1000"
        )
        assert result.status == 200, result.text
        page = result.json()
        rows.extend(page)
        if len(page) < 1000:
            return rows
        start = page[-1][0] + 1


def as_klines(rows: list[list]) -> list[Kline]:
    return [Kline(r[0], *(Decimal(v) for v in r[1:6])) for r in rows]


def snapshot() -> dict[str, list[tuple]]:
    return {
        name: list(model.objects.order_by("symbol", "open_time").values_list()) for name, model in CANDLE_MODELS.items()
    }


def test_replayed_exchange_trades_give_the_exchanges_candles(replay, consume, live_server):
    replay()
    runner = consume(GOLDEN_TRADE_COUNT)

    assert runner.stats.received == GOLDEN_TRADE_COUNT and runner.stats.dead_lettered == 0
    binance_1m = read_klines("binance_XRPETH_klines_1m_20191011.csv")
    binance_5m = read_klines("binance_XRPETH_klines_5m_20191011.csv")
    assert as_klines(fetch_klines(live_server.url, "1m")) == binance_1m
    assert as_klines(fetch_klines(live_server.url, "5m")) == binance_5m
    assert as_klines(fetch_klines(live_server.url, "15m")) == rollup(binance_1m, 15 * 60_000)
    assert as_klines(fetch_klines(live_server.url, "1h")) == rollup(binance_1m, 60 * 60_000)
    assert len(binance_1m) == 2469 and len(binance_5m) == 706


def test_kline_rows_have_binances_twelve_fields_and_the_trades_volumes(replay, consume, live_server):
    replay()
    consume(GOLDEN_TRADE_COUNT)
    trades = read_trades()
    first_minute = [t for t in trades if int(t["time_ms"]) < 1570752060000]

    def quote(ts):  # the file's quote_qty went through floats; price x qty is the exact figure
        return sum((Decimal(t["price"]) * Decimal(t["qty"]) for t in ts), Decimal(0))

    rows = fetch_klines(live_server.url, "1m")

    assert rows[0] == [
        1570752000000,
        "0.00141342",
        "0.00141557",
        "0.00141266",
        "0.00141418",
        "1482.00000000",
        1570752059999,
        format(quote(first_minute), ".8f"),
        len(first_minute),
        format(sum(Decimal(t["qty"]) for t in first_minute if t["is_buyer_maker"] == "false"), ".8f"),
        format(quote([t for t in first_minute if t["is_buyer_maker"] == "false"]), ".8f"),
        "0",
    ]
    assert sum(r[8] for r in rows) == GOLDEN_TRADE_COUNT
    assert sum(Decimal(r[7]) for r in rows) == quote(trades)
    assert all(r[6] == r[0] + 59_999 for r in rows)
    price = http("GET", f"{live_server.url}/api/v3/ticker/price?symbol={GOLDEN_SYMBOL}").json()
    assert price == {"symbol": GOLDEN_SYMBOL, "price": format(Decimal(trades[-1]["price"]), ".8f")}


def test_replaying_the_same_file_twice_changes_no_candle(replay, consume):
    replay()
    consume(GOLDEN_TRADE_COUNT)
    before = snapshot()

    replay()
    again = consume(GOLDEN_TRADE_COUNT)

    assert again.stats.received == GOLDEN_TRADE_COUNT
    assert snapshot() == before
    cursor = SymbolCursor.objects.get(symbol=GOLDEN_SYMBOL)
    assert (cursor.last_trade_id, cursor.trades_applied) == (GOLDEN_LAST_ID, GOLDEN_TRADE_COUNT)


def test_a_consumer_killed_mid_replay_and_restarted_counts_every_trade_once(replay, spawn_consumer):
    replay()

    first = spawn_consumer("--batch-size", "50")
    _wait(lambda: _applied() >= 3000, timeout=90, what="the consumer to make progress")
    first.kill(signal.SIGKILL)
    killed_at = _applied()
    spawn_consumer("--batch-size", "50")
    _wait(lambda: _applied() >= GOLDEN_TRADE_COUNT, timeout=120, what="the restarted consumer to finish")

    assert killed_at < GOLDEN_TRADE_COUNT, "the kill came after the end; the test proved nothing"
    cursor = SymbolCursor.objects.get(symbol=GOLDEN_SYMBOL)
    assert (cursor.last_trade_id, cursor.trades_applied) == (GOLDEN_LAST_ID, GOLDEN_TRADE_COUNT)
    binance_1m = read_klines("binance_XRPETH_klines_1m_20191011.csv")
    stored = [
        Kline(int(c.open_time.timestamp() * 1000), c.open, c.high, c.low, c.close, c.volume)
        for c in CANDLE_MODELS["1m"].objects.filter(symbol=GOLDEN_SYMBOL).order_by("open_time")
    ]
    assert stored == binance_1m
    assert sum(CANDLE_MODELS["1h"].objects.values_list("trades", flat=True)) == GOLDEN_TRADE_COUNT


def _applied() -> int:
    return SymbolCursor.objects.filter(symbol=GOLDEN_SYMBOL).values_list("trades_applied", flat=True).first() or 0


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
