"""Faults injected into the running platform: it loses nothing, duplicates nothing and money is conserved.

20 users place 500 mixed orders while trades flow; at moments drawn from a seeded generator the harness
SIGKILLs and restarts every consumer and every Celery worker, and SIGKILLs the Kafka broker once and starts it
again. Once the platform settles, the checks read each service's own database (as that service's role):
every order is final or open as its saga says, no reservation outlives its order, every fill has exactly one
transaction and one settlement, `reconcile` passes, and each asset's total equals credits + bought - sold - fees.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg2
import pytest

from tests.e2e.conftest import ROOT, manage_all
from tests.e2e.system import System, Trader, publish_trades, until

SEED = 20261125
USERS = 20
ORDERS = 500
ORDER_WINDOW_S = 60.0
FINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED"}
OPEN = {"NEW", "PARTIALLY_FILLED"}
SAGA_FOR_STATUS = {
    "NEW": {"COMPLETED"},
    "PARTIALLY_FILLED": {"COMPLETED"},
    "FILLED": {"COMPLETED"},
    "EXPIRED": {"COMPLETED"},
    "CANCELED": {"COMPLETED", "COMPENSATED"},
    "REJECTED": {"FAILED", "COMPENSATED"},
}
infra = manage_all.infra


def _query(service: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(infra.database_url(service)) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    conn.close()
    return rows


def _random_order(rng: random.Random, price: Decimal) -> dict:
    kind = rng.random()
    limit = (price * Decimal(str(rng.uniform(0.985, 1.015)))).quantize(Decimal("0.01"))
    qty = Decimal(rng.choice(["0.001", "0.002", "0.005", "0.01"]))
    if kind < 0.45:
        return {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": str(qty),
            "price": str(limit),
        }
    if kind < 0.60:
        return {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": str(qty)}
    if kind < 0.75:
        return {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": str(qty),
            "price": str(limit),
        }
    if kind < 0.85:
        tif = rng.choice(["IOC", "FOK"])
        return {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": tif,
            "quantity": str(qty),
            "price": str(limit),
        }
    if kind < 0.95:  # more than the whole portfolio: rejected by the saga
        return {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "1",
            "price": str(limit),
        }
    return {"cancel": True}


@pytest.fixture
def system(log_dir):
    running = System(log_dir)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


@pytest.mark.faults
def test_crashes_and_a_broker_outage_lose_nothing_and_conserve_money(system, capsys):
    rng = random.Random(SEED)
    log_dir = system.log_dir
    faults: Counter[str] = Counter()
    stop_trading = threading.Event()
    started_at = time.time()
    try:
        traders = [Trader.register(system) for _ in range(USERS)]
        for trader in traders:
            trader.wait_funded(timeout=90)
        price = Decimal("50000.00")
        publish_trades("BTCUSDT", [(str(price), "0.001")])  # a last price for MARKET orders

        def trade_flow() -> None:
            walk = random.Random(SEED + 1)
            current = price
            while not stop_trading.is_set():
                current = max(Decimal("45000"), current * Decimal(str(walk.uniform(0.997, 1.003)))).quantize(
                    Decimal("0.01")
                )
                qty = Decimal(walk.choice(["0.003", "0.01", "0.02", "0.05"]))
                # While the broker is down the feed skips ticks, as a live feed would.
                with contextlib.suppress(AssertionError):
                    publish_trades("BTCUSDT", [(str(current), str(qty))], buyer_is_maker=walk.random() < 0.5)
                stop_trading.wait(0.25)

        # Faults: each consumer and worker once, the broker once, at seeded moments inside the order window.
        schedule = [(rng.uniform(3, ORDER_WINDOW_S - 5), name) for name in system.consumers + system.workers]
        schedule.append((rng.uniform(15, 35), "kafka"))
        schedule.sort()

        def inject() -> None:
            t0 = time.monotonic()
            for at, name in schedule:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                if name == "kafka":
                    kafka = infra.Kafka()
                    kafka.kill()
                    time.sleep(3)
                    kafka.start()
                else:
                    system.restart(name, signal.SIGKILL)
                faults[name] += 1

        placed: list[tuple[Trader, str]] = []
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        plans = [(rng.choice(traders), _random_order(rng, price)) for _ in range(ORDERS)]

        def place(item: tuple[Trader, dict]) -> None:
            trader, order = item
            if order.get("cancel"):
                with lock:
                    mine = [oid for t, oid in placed if t is trader]
                if not mine:
                    return
                result = trader.call("DELETE", "order_svc", f"/api/orders/{mine[-1]}")
            else:
                result = trader.place(**order)
                if result.status in (200, 201):
                    with lock:
                        placed.append((trader, result.json()["orderId"]))
            with lock:
                statuses[result.status] += 1

        trading = threading.Thread(target=trade_flow, daemon=True)
        injector = threading.Thread(target=inject, daemon=True)
        trading.start()
        injector.start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            for i, item in enumerate(plans):
                pool.submit(place, item)
                time.sleep(ORDER_WINDOW_S / ORDERS * (0.5 + rng.random()))
                if i % 100 == 0:
                    print(f"[faults] {i} orders sent, faults so far: {sum(faults.values())}", flush=True)
        injector.join(timeout=120)
        time.sleep(5)
        stop_trading.set()
        trading.join()

        # --- settle: no saga waiting, every outbox drained, nothing changing any more ---------------------
        order_ids = [oid for _, oid in placed]

        def snapshot() -> tuple:
            pending = _query(
                "order_svc",
                "SELECT count(*) FROM orders WHERE id::text = ANY(%s) AND status = 'PENDING_NEW'",
                (order_ids,),
            )[0][0]
            outbox = sum(
                _query(s, "SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")[0][0]
                for s in manage_all.SERVICES
            )
            fills = _query("order_svc", "SELECT count(*) FROM fills")[0][0]
            settled = _query("portfolio_svc", "SELECT count(*) FROM settlements")[0][0]
            recorded = _query("transaction_svc", "SELECT count(*) FROM transactions")[0][0]
            active = _query("portfolio_svc", "SELECT count(*) FROM reservations WHERE state = 'ACTIVE'")[0][0]
            return pending, outbox, fills, settled, recorded, active

        previous = None

        def settled() -> bool:
            nonlocal previous
            current = snapshot()
            done = current[0] == 0 and current[1] == 0 and current == previous
            previous = current
            return done

        until(settled, timeout=180, interval=5, what="the platform to settle after the faults")
    finally:
        stop_trading.set()

    # --- the promises ------------------------------------------------------------------------------------
    user_ids = [t.user_id for t in traders]
    orders = {
        str(oid): (status, saga_state, side, user)
        for oid, status, saga_state, side, user in _query(
            "order_svc",
            "SELECT o.id, o.status, s.state, o.side, o.user_id::text FROM orders o JOIN sagas s ON s.order_id = o.id "
            "WHERE o.user_id::text = ANY(%s)",
            (user_ids,),
        )
    }
    assert len(orders) == len(placed)
    for oid, (status, saga_state, _, _) in orders.items():
        assert status in FINAL | OPEN, f"order {oid} is stuck in {status}"
        assert saga_state in SAGA_FOR_STATUS[status], f"order {oid} is {status} but its saga is {saga_state}"

    reservations = dict(
        _query("portfolio_svc", "SELECT order_id, state FROM reservations WHERE order_id = ANY(%s)", (list(orders),))
    )
    for oid, (status, *_rest) in orders.items():
        if status in FINAL:
            assert reservations.get(oid) != "ACTIVE", f"finished order {oid} ({status}) still holds a reservation"
        else:
            assert reservations.get(oid) == "ACTIVE", f"open order {oid} has no active reservation"

    fills = _query(
        "order_svc",
        "SELECT f.id::text, o.side, s.base_asset, s.quote_asset, f.qty, f.quote_qty, f.fee, o.user_id::text "
        "FROM fills f JOIN orders o ON o.id = f.order_id JOIN symbols s ON s.symbol = o.symbol "
        "WHERE o.user_id::text = ANY(%s)",
        (user_ids,),
    )
    fill_ids = [f[0] for f in fills]
    settlements = Counter(
        r[0] for r in _query("portfolio_svc", "SELECT fill_id FROM settlements WHERE fill_id = ANY(%s)", (fill_ids,))
    )
    transactions = Counter(
        r[0]
        for r in _query(
            "transaction_svc", "SELECT fill_id::text FROM transactions WHERE fill_id::text = ANY(%s)", (fill_ids,)
        )
    )
    for fill_id in fill_ids:
        assert settlements[fill_id] == 1, f"fill {fill_id} settled {settlements[fill_id]} times"
        assert transactions[fill_id] == 1, f"fill {fill_id} recorded {transactions[fill_id]} times"

    reconcile = subprocess.run(
        [str(manage_all.PY), "manage.py", "reconcile"],
        cwd=ROOT / "portfolio_svc",
        env={**os.environ, **manage_all.service_env("portfolio_svc")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert reconcile.returncode == 0, reconcile.stdout[-3000:] + reconcile.stderr[-2000:]

    expected: Counter[str] = Counter({"USDT": Decimal("10000") * USERS})
    for _, side, base, quote, qty, quote_qty, fee, _ in fills:
        if side == "BUY":
            expected[base] += qty - fee
            expected[quote] -= quote_qty
        else:
            expected[base] -= qty
            expected[quote] += quote_qty - fee
    held = dict(
        _query(
            "portfolio_svc",
            "SELECT b.asset_id, sum(b.available + b.locked) FROM balances b JOIN portfolios p ON p.id = b.portfolio_id "
            "WHERE p.user_id::text = ANY(%s) GROUP BY b.asset_id",
            (user_ids,),
        )
    )
    for asset in set(expected) | set(held):
        assert held.get(asset, Decimal(0)) == expected[asset], f"{asset}: held {held.get(asset)} != {expected[asset]}"

    relayed = sum(
        _query(
            s,
            "SELECT count(*) FROM outbox_messages WHERE published_at IS NOT NULL AND created_at >= to_timestamp(%s)",
            (started_at,),
        )[0][0]
        for s in manage_all.SERVICES
    )
    duplicates = 0
    for path in log_dir.glob("*_consumers*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"inbox skipped duplicates"' in line:
                duplicates += json.loads(line[line.index("{") :]).get("duplicates", 0)
    counts = {
        "orders": len(orders),
        "statuses": dict(Counter(s for s, *_ in orders.values())),
        "http": dict(statuses),
        "fills": len(fills),
        "faults_injected": sum(faults.values()),
        "faults": dict(faults),
        "events_relayed": relayed,
        "duplicates_skipped_by_inboxes": duplicates,
    }
    with capsys.disabled():
        print("\n[faults] " + json.dumps(counts))
    assert sum(faults.values()) == len(schedule)
    assert len(fills) > 0 and relayed > 0

    # Leave no open order behind: later tests' trades would fill these older orders first.
    system.cancel_open_orders()
