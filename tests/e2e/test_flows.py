"""What a user does, end to end, against the whole platform running as real processes.

Register -> default portfolio with 10,000 USDT -> LIMIT BUY BTCUSDT -> NEW -> trades cross it -> FILLED ->
BTC in the portfolio (fee in BTC) -> the transaction in the history and the CSV export -> SELL back ->
candles for the traded minutes. And the unhappy paths: insufficient funds, cancel.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from decimal import Decimal

import pytest

from tests.e2e.conftest import manage_all
from tests.e2e.system import System, Trader, publish_trades, until

START = Decimal("10000")


@pytest.fixture(scope="module")
def system(log_dir):
    running = System(log_dir)
    try:
        running.start_all()
        running.cancel_open_orders()  # an empty book: our trades fill our orders
        yield running
    finally:
        running.stop_all()


def test_buy_fill_record_sell_and_candles(system):
    trader = Trader.register(system)
    assert trader.wait_funded() == {"USDT": (START, Decimal("0"))}

    placed = trader.place(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01000", price="50000.00"
    )
    assert placed.status == 201, placed.text
    order_id = placed.json()["orderId"]
    trader.wait_status(order_id, "NEW")
    assert trader.balances()["USDT"] == (START - 500, Decimal("500"))

    started_ms = int(time.time() * 1000)
    publish_trades("BTCUSDT", [("50010.00", "0.004"), ("49990.00", "0.004"), ("49980.00", "0.010")])
    filled = trader.wait_status(order_id, "FILLED")

    assert Decimal(filled["executedQty"]) == Decimal("0.01")
    assert [Decimal(f["qty"]) for f in filled["fills"]] == [Decimal("0.004"), Decimal("0.006")]
    assert {f["commissionAsset"] for f in filled["fills"]} == {"BTC"}
    balances = until(
        lambda: (b := trader.balances()).get("BTC") and b["USDT"][1] == 0 and b, timeout=30, what="settlement"
    )
    assert balances["BTC"] == (Decimal("0.00999"), Decimal("0"))  # 0.01 bought, 0.1% fee in BTC
    assert balances["USDT"] == (Decimal("9500"), Decimal("0"))

    history = until(
        lambda: (
            (r := trader.call("GET", "transaction_svc", "/api/transactions/?symbol=BTCUSDT").json())["results"]
            and len(r["results"]) == 2
            and r["results"]
        ),
        timeout=30,
        what="the fills in the transaction history",
    )
    assert sorted(Decimal(t["qty"]) for t in history) == [Decimal("0.004"), Decimal("0.006")]
    export = trader.call("GET", "transaction_svc", "/api/transactions/export.csv", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert export.status == 200 and len(rows) == 2
    assert {r["side"] for r in rows} == {"BUY"} and sum(Decimal(r["fee"]) for r in rows) == Decimal("0.00001")

    sell = trader.place(
        symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.00999", price="50000.00"
    )
    assert sell.status == 201, sell.text
    sell_id = sell.json()["orderId"]
    trader.wait_status(sell_id, "NEW")
    publish_trades("BTCUSDT", [("50020.00", "0.02")])
    trader.wait_status(sell_id, "FILLED")
    balances = until(
        lambda: (b := trader.balances())["BTC"][0] == 0 and b["USDT"][0] > 9500 and b, timeout=30, what="the sale"
    )
    # 0.00999 BTC at 50000 = 499.5 USDT, less 0.1% in USDT
    assert balances["USDT"] == (Decimal("9999.0005"), Decimal("0"))
    assert balances["BTC"] == (Decimal("0"), Decimal("0"))

    klines = until(
        lambda: (
            (
                r := trader.call(
                    "GET", "analytics_svc", f"/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={started_ms - 60_000}"
                )
            ).status
            == 200
            and r.json()
        ),
        timeout=30,
        what="candles for the traded minutes",
    )
    minute = started_ms - started_ms % 60_000
    assert any(row[0] >= minute for row in klines)
    assert sum(int(row[8]) for row in klines if row[0] >= minute) >= 4  # our four trades at least


def test_insufficient_funds_is_rejected_and_nothing_stays_locked(system):
    trader = Trader.register(system)
    trader.wait_funded()

    placed = trader.place(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="50000.00")
    assert placed.status == 201, placed.text
    rejected = trader.wait_status(placed.json()["orderId"], "REJECTED")

    assert "insufficient" in (rejected.get("rejectReason") or rejected.get("reason") or "").lower()
    assert trader.balances()["USDT"] == (START, Decimal("0"))


def test_cancel_gives_the_funds_back(system):
    trader = Trader.register(system)
    trader.wait_funded()
    placed = trader.place(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="1000.00"
    )
    order_id = placed.json()["orderId"]
    trader.wait_status(order_id, "NEW")
    assert trader.balances()["USDT"] == (START - 10, Decimal("10"))

    cancelled = trader.call("DELETE", "order_svc", f"/api/orders/{order_id}")

    assert cancelled.status == 200, cancelled.text
    assert trader.wait_status(order_id, "CANCELED")["status"] == "CANCELED"
    until(lambda: trader.balances()["USDT"] == (START, Decimal("0")), timeout=30, what="the funds to come back")


def test_one_trace_follows_an_order_from_the_gateway_through_every_service(system, watcher):
    """POST through nginx with our own traceparent; Zipkin's trace has order, portfolio and transaction spans."""
    from common.testing.http import http

    gateway = f"http://127.0.0.1:{manage_all.infra.gateway_port()}"
    zipkin = f"http://127.0.0.1:{manage_all.infra.ZIPKIN_PORT}"
    trader = Trader.register(system)
    trader.wait_funded()
    until(
        lambda: http("GET", f"{gateway}/api/orders/").headers.get("X-Served-By", "").startswith("order_svc@"),
        timeout=30,
        what="the gateway to route to order_svc",
    )
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]

    placed = http(
        "POST",
        f"{gateway}/api/orders",
        json_body={
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "50000.00",
        },
        headers={"Authorization": f"Bearer {trader.token}", "traceparent": f"00-{trace_id}-{parent}-01"},
    )
    assert placed.status == 201, placed.text
    order_id = placed.json()["orderId"]
    trader.wait_status(order_id, "NEW")
    publish_trades("BTCUSDT", [("49990.00", "0.01")])
    trader.wait_status(order_id, "FILLED")

    expected = {
        ("portfolio_svc", "handle portfolio.reserve_funds"),
        ("order_svc", "handle balance.reserved"),
        ("portfolio_svc", "handle order.filled"),
        ("transaction_svc", "handle order.filled"),
    }
    seen: set = set()

    def trace_spans():
        # Each process exports its spans in its own batches: wait until every hop has reported.
        result = http("GET", f"{zipkin}/api/v2/trace/{trace_id}")
        if result.status != 200:
            return None
        spans = result.json()
        seen.clear()
        seen.update((s["localEndpoint"]["serviceName"], s["name"]) for s in spans if s.get("kind") == "CONSUMER")
        return spans if expected <= seen else None

    try:
        spans = until(trace_spans, timeout=60, interval=1, what="every hop of the order's trace in Zipkin")
    except AssertionError:
        raise AssertionError(f"consumer spans missing from the trace: {expected - seen}") from None
    by_id = {s["id"]: s for s in spans}
    for span in spans:  # one tree: every span but the root hangs from a span of the same trace
        assert span["traceId"] == trace_id
        if span["id"] != parent and span.get("parentId") != parent:
            assert span.get("parentId") in by_id, f"{span['name']} is not joined to the trace"
    server = next(s for s in spans if s.get("kind") == "SERVER" and s["localEndpoint"]["serviceName"] == "order_svc")
    assert server["parentId"] == parent  # the gateway passed our traceparent through
