"""The order saga across order_svc and portfolio_svc: real web servers, consumers, Celery workers and beats.

Both services run as `up` runs them, on the real topics and their real databases. Each test registers a
user of its own (a user.registered event portfolio_svc turns into a portfolio with 10000 USDT), drives
order_svc over HTTP, produces trades to market-data, and reads balances from portfolio_svc's API.
Trades use BNBUSDT at prices far below the real market (around 1 USDT), so no other feed crosses them.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from common.events import Envelope
from common.testing.auth import sign
from common.testing.http import http
from common.testing.kafka import produce
from tests.e2e.conftest import ROOT, RunningProcess, free_port, manage_all, wait_http

KAFKA = f"127.0.0.1:{manage_all.infra.KAFKA_PORT}"
SAGA_TIMEOUT_S = 4
STARTING_USDT = Decimal("10000")

ORDER_CONSUMERS = ["balance-events", "market-data"]
PORTFOLIO_CONSUMERS = ["user-events", "portfolio-commands", "order-events"]


class Platform:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.running: dict[str, RunningProcess] = {}
        ports = {svc: [free_port()] for svc in manage_all.SERVICES}
        self.urls = {svc: f"http://127.0.0.1:{ports[svc][0]}" for svc in ("order_svc", "portfolio_svc")}
        table = {p.name: p for p in manage_all.process_table(ports=ports)}
        self.processes: dict[str, manage_all.Process] = {}
        for svc in ("order_svc", "portfolio_svc"):
            for kind in ("web", "worker"):
                self.processes[f"{svc}_{kind}"] = table[f"{svc}_{kind}"]
            # A beat schedule file of this run's own, so a running `up` keeps its own.
            self.processes[f"{svc}_beat"] = manage_all.Process(
                f"{svc}_beat",
                svc,
                [
                    str(manage_all.VENV / "bin" / "celery"),
                    "-A",
                    svc,
                    "beat",
                    "--schedule",
                    str(log_dir / f"{svc}-beat"),
                ],
            )
        for svc, names in (("order_svc", ORDER_CONSUMERS), ("portfolio_svc", PORTFOLIO_CONSUMERS)):
            for name in names:
                self.processes[f"{svc}_consume_{name}"] = manage_all.Process(
                    f"{svc}_consume_{name}", svc, [str(manage_all.PY), "manage.py", "consume", name]
                )

    def start(self, name: str) -> None:
        extra = {"ORDER_SAGA_TIMEOUT_S": str(SAGA_TIMEOUT_S)} if name.startswith("order_svc") else {}
        self.running[name] = RunningProcess(self.processes[name], self.log_dir, extra_env=extra)

    def stop(self, name: str) -> None:
        self.running.pop(name).stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log()[-3000:]}" for n, p in self.running.items())


def _migrate(service: str) -> None:
    result = subprocess.run(
        [str(manage_all.PY), "manage.py", "migrate", "--noinput"],
        cwd=ROOT / service,
        env={**os.environ, **manage_all.service_env(service)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def platform(log_dir) -> Iterator[Platform]:
    for service in ("order_svc", "portfolio_svc"):
        _migrate(service)
    running = Platform(log_dir)
    try:
        for name in running.processes:
            running.start(name)
        for url in running.urls.values():
            wait_http(f"{url}/healthz", timeout=90)
        yield running
    finally:
        for name in list(running.running):
            running.stop(name)


def _until(condition: Callable[[], object], *, timeout: float, what: str, platform: Platform | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    logs = platform.logs() if platform else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def _auth(user_id: uuid.UUID) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "token_type": "access",
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=10),
        "jti": uuid.uuid4().hex,
        "iss": "paper-trading/user_svc",
        "aud": "paper-trading",
    }
    return {"Authorization": f"Bearer {sign(claims)}"}


class Trader:
    """One registered user of the running platform."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.user_id = uuid.uuid4()
        self.headers = _auth(self.user_id)
        event = Envelope.new(
            "user.registered",
            source="tests",
            subject=str(self.user_id),
            data={"user_id": str(self.user_id), "email": f"{self.user_id.hex}@example.com", "display_name": "e2e"},
        )
        produce(KAFKA, "user-events", [(str(self.user_id).encode(), event.to_json())])
        self.wait_balance("USDT", available=STARTING_USDT, locked=Decimal(0))

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        result = http("GET", f"{self.platform.urls['portfolio_svc']}/api/balances/", headers=self.headers)
        assert result.status == 200, result.text
        return {b["asset"]: (Decimal(b["available"]), Decimal(b["locked"])) for b in result.json()}

    def wait_balance(self, asset: str, *, available: Decimal, locked: Decimal, timeout: float = 60) -> None:
        _until(
            lambda: self.balances().get(asset) == (available, locked),
            timeout=timeout,
            what=f"{asset} of {self.user_id} to be {available} available, {locked} locked (now {self.balances()})",
            platform=self.platform,
        )

    def place(self, **body) -> dict:
        result = http("POST", f"{self.platform.urls['order_svc']}/api/orders", json_body=body, headers=self.headers)
        assert result.status in (200, 201), result.text
        return result.json()

    def order(self, order_id: str) -> dict:
        result = http("GET", f"{self.platform.urls['order_svc']}/api/orders/{order_id}", headers=self.headers)
        assert result.status == 200, result.text
        return result.json()

    def wait_status(self, order_id: str, status: str, timeout: float = 60) -> dict:
        return _until(
            lambda: (o := self.order(order_id))["status"] == status and o,
            timeout=timeout,
            what=f"order {order_id} to be {status} (now {self.order(order_id)['status']})",
            platform=self.platform,
        )

    def cancel(self, order_id: str):
        return http("DELETE", f"{self.platform.urls['order_svc']}/api/orders/{order_id}", headers=self.headers)


def _trades(*price_qty: tuple[str, str]) -> None:
    """Trades on the real market-data topic, with ids above any the platform saw for BNBUSDT."""
    base = time.time_ns() // 1000  # microseconds: grows faster than any exchange's trade ids
    messages = []
    for i, (price, qty) in enumerate(price_qty):
        ms = int(time.time() * 1000)
        data = {"e": "trade", "E": ms, "s": "BNBUSDT", "t": base + i, "p": price, "q": qty, "T": ms, "m": False}
        envelope = Envelope.new("trade", source="tests", subject="BNBUSDT", data=data)
        messages.append((b"BNBUSDT", envelope.to_json()))
    produce(KAFKA, "market-data", messages)


def _order_events(order_id: str, type_: str) -> list[dict]:
    with psycopg2.connect(manage_all.infra.database_url("order_svc")) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT data FROM order_events WHERE order_id = %s AND type = %s ORDER BY id", [order_id, type_])
        return [row[0] for row in cursor.fetchall()]


LIMIT_BUY = {"symbol": "BNBUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}


def test_a_limit_buy_fills_in_two_partial_fills_and_portfolio_settles_balances_and_fees(platform):
    trader = Trader(platform)

    order = trader.place(**LIMIT_BUY, quantity="10", price="1.50")
    trader.wait_status(order["orderId"], "NEW")
    trader.wait_balance("USDT", available=Decimal("9985"), locked=Decimal("15"))
    _trades(("1.60", "50"), ("1.40", "4"))  # the first is above the limit: no fill
    partial = trader.wait_status(order["orderId"], "PARTIALLY_FILLED")
    _trades(("1.45", "100"))
    filled = trader.wait_status(order["orderId"], "FILLED")

    assert partial["executedQty"] == "4.00000000"
    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in filled["fills"]] == [
        ("1.50000000", "4.00000000", "0.00400000", "BNB"),
        ("1.50000000", "6.00000000", "0.00600000", "BNB"),
    ]
    assert filled["cummulativeQuoteQty"] == "15.00000000"
    # 15 USDT paid from the reservation, 10 BNB received less the 0.1% maker fee charged in BNB
    trader.wait_balance("USDT", available=Decimal("9985"), locked=Decimal("0"))
    trader.wait_balance("BNB", available=Decimal("9.99"), locked=Decimal("0"))


def test_insufficient_funds_rejects_the_order_and_nothing_stays_locked(platform):
    trader = Trader(platform)

    order = trader.place(**LIMIT_BUY, quantity="10000", price="1.50")  # 15000 USDT, 10000 held
    rejected = trader.wait_status(order["orderId"], "REJECTED")

    assert rejected["reason"] == "insufficient_funds"
    assert rejected["fills"] == []
    trader.wait_balance("USDT", available=STARTING_USDT, locked=Decimal(0), timeout=5)


def test_cancel_releases_an_open_order_and_a_filled_order_cannot_be_cancelled(platform):
    trader = Trader(platform)
    resting = trader.place(**LIMIT_BUY, quantity="10", price="1.20")
    trader.wait_status(resting["orderId"], "NEW")
    trader.wait_balance("USDT", available=Decimal("9988"), locked=Decimal("12"))

    cancelled = trader.cancel(resting["orderId"])

    assert cancelled.status == 200 and cancelled.json()["status"] == "CANCELED"
    trader.wait_balance("USDT", available=STARTING_USDT, locked=Decimal(0))

    filled = trader.place(**LIMIT_BUY, quantity="5", price="1.10")
    trader.wait_status(filled["orderId"], "NEW")
    _trades(("1.05", "5"))
    trader.wait_status(filled["orderId"], "FILLED")
    trader.wait_balance("USDT", available=Decimal("9994.5"), locked=Decimal(0))

    refused = trader.cancel(filled["orderId"])

    assert refused.status == 400 and refused.json()["code"] == "-2011"
    assert trader.order(filled["orderId"])["status"] == "FILLED"
    assert _order_events(filled["orderId"], "order.cancelled") == []
    trader.wait_balance("USDT", available=Decimal("9994.5"), locked=Decimal(0), timeout=2)


def test_the_same_client_order_id_posted_concurrently_makes_one_order(platform):
    trader = Trader(platform)
    body = {**LIMIT_BUY, "quantity": "10", "price": "1.00", "newClientOrderId": f"twice-{uuid.uuid4().hex[:8]}"}
    results: list = []
    start = threading.Barrier(4)

    def post() -> None:
        start.wait(10)
        results.append(http("POST", f"{platform.urls['order_svc']}/api/orders", json_body=body, headers=trader.headers))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(r.status for r in results) == [200, 200, 200, 201]
    assert len({r.json()["orderId"] for r in results}) == 1
    listed = http("GET", f"{platform.urls['order_svc']}/api/orders/", headers=trader.headers).json()["results"]
    assert len(listed) == 1
    trader.wait_balance("USDT", available=Decimal("9990"), locked=Decimal("10"))  # reserved once, not four times


def test_a_stopped_portfolio_consumer_times_the_saga_out_and_the_late_reservation_is_released(platform):
    trader = Trader(platform)
    platform.stop("portfolio_svc_consume_portfolio-commands")
    try:
        order = trader.place(**LIMIT_BUY, quantity="10", price="1.50")
        rejected = trader.wait_status(order["orderId"], "REJECTED", timeout=SAGA_TIMEOUT_S + 30)
        assert rejected["reason"] == "timeout"
        assert trader.balances()["USDT"] == (STARTING_USDT, Decimal(0))  # nothing was reserved yet
    finally:
        platform.start("portfolio_svc_consume_portfolio-commands")

    # The restarted consumer reserves (the command was waiting), then releases (the timeout's command);
    # order_svc reads the late balance.reserved and sends one more release, which changes nothing.
    _until(
        lambda: (
            [r["reason"] for r in _order_events(order["orderId"], "portfolio.release_funds")]
            == ["timeout", "late reservation"]
        ),
        timeout=60,
        what="the late reservation to be released",
        platform=platform,
    )
    trader.wait_balance("USDT", available=STARTING_USDT, locked=Decimal(0))
    assert trader.order(order["orderId"])["status"] == "REJECTED"
