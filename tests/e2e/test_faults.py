"""Faults injected into the running platform: it loses nothing, duplicates nothing and money is conserved.

20 users place 500 mixed orders (and read their balances) while trades flow; at moments drawn from a seeded
generator the harness SIGKILLs and restarts every consumer (twice), every Celery worker (the outbox relay
loop runs in them), order_svc's and portfolio_svc's beat and web servers, and SIGKILLs the Kafka broker once
and starts it again. A request a web kill cuts off is sent again (an order with the same client order id, so
it is placed once); one never answered is looked up by that id. The kills must have interrupted work in
flight: the inboxes skipped redeliveries. Once the platform settles, the checks read each service's own
database (as that service's role): every order is final or open as its saga says, no reservation outlives
its order, every fill has exactly one transaction and one settlement, `reconcile` passes, and money is
conserved three ways that do not lean on each other: portfolio_svc's ledger sums to its balances, each fill's
ledger entries are the movements transaction_svc recorded for it (and the starting credits plus those
movements are every user's balances), and each asset's total equals credits + bought - sold - fees from
order_svc's fills.
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
from http.client import HTTPException
from pathlib import Path

import psycopg2
import pytest

from common.testing.http import HttpResult
from tests.e2e.conftest import ROOT, manage_all
from tests.e2e.system import System, Trader, publish_trades, until

SEED = 20261125
USERS = 20
STARTING_FUNDS = Decimal("10000")  # USDT, portfolio_svc's default
ORDERS = 500
ORDER_WINDOW_S = 60.0
# Killed and restarted during the load besides every consumer and worker (a name twice: two kills).
MORE_KILLS = ("order_svc_web", "order_svc_web", "portfolio_svc_web", "order_svc_beat", "portfolio_svc_beat")
# Each consumer's: a kill redelivers only what it handled since its last offset commit. At the default interval
# (0.2 s) one kill of a busy consumer may well redeliver nothing, so the consumers here commit every 2 s: every
# kill of a busy one then redelivers work the inbox must skip.
CONSUMER_KILLS = 3
COMMIT_INTERVAL_S = "2"
RETRY_FOR_S = 60.0  # a client sends a request a web kill cut off again for this long
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


def _call(trader: Trader, method: str, service: str, path: str, **kwargs) -> tuple[HttpResult | None, int]:
    """One request as a careful client sends it, again while the server is gone or failing.

    Returns the answer (None: never answered) and how many times it was sent again.

    Safe to repeat: a placement carries its client order id, a cancel of a cancelled order is refused, a read
    is a read.
    """
    deadline = time.monotonic() + RETRY_FOR_S
    again = 0
    while True:
        try:
            result = trader.call(method, service, path, **kwargs)
            if result.status < 500:
                return result, again
        except (OSError, HTTPException):  # refused, reset or cut off: the web server was killed
            pass
        if time.monotonic() > deadline:
            return None, again
        again += 1
        time.sleep(0.5)


def _log_sizes(log_dir: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in log_dir.glob("*_consumers*.log")}


def _duplicates_since(log_dir: Path, sizes: dict[Path, int]) -> Counter[str]:
    """Per consumer: the redeliveries its inbox skipped (the consumer base logs each batch's), after `sizes`."""
    skipped: Counter[str] = Counter()
    for path in log_dir.glob("*_consumers*.log"):
        with path.open("rb") as log:
            log.seek(sizes.get(path, 0))
            text = log.read().decode(errors="replace")
        for line in text.splitlines():
            if '"inbox skipped duplicates"' in line:
                record = json.loads(line[line.index("{") :])
                skipped[record["consumer"]] += record["duplicates"]
    return skipped


def _movements(side: str, base: str, quote: str, qty: Decimal, quote_qty: Decimal) -> dict[str, tuple[str, Decimal]]:
    """A fill's ledger kinds -> (asset, amount): what it pays, what it buys (gross)."""
    if side == "BUY":
        return {"FILL_DEBIT": (quote, quote_qty), "FILL_CREDIT": (base, qty)}
    return {"FILL_DEBIT": (base, qty), "FILL_CREDIT": (quote, quote_qty)}


def _check_ledger_and_transactions(user_ids: list[str], fill_ids: set[str], starting: Decimal) -> None:
    """Money from portfolio_svc's ledger and transaction_svc's records alone, neither read from order_svc."""
    balances = {
        (user, asset): (available, locked)
        for user, asset, available, locked in _query(
            "portfolio_svc",
            "SELECT p.user_id::text, b.asset_id, b.available, b.locked FROM balances b "
            "JOIN portfolios p ON p.id = b.portfolio_id WHERE p.user_id::text = ANY(%s)",
            (user_ids,),
        )
    }
    ledger = {
        (user, asset): (available, locked)
        for user, asset, available, locked in _query(
            "portfolio_svc",
            "SELECT user_id::text, asset_id, sum(available_delta), sum(locked_delta) FROM ledger_entries "
            "WHERE user_id::text = ANY(%s) GROUP BY user_id, asset_id",
            (user_ids,),
        )
    }
    zero = (Decimal(0), Decimal(0))
    for key in set(balances) | set(ledger):
        assert balances.get(key, zero) == ledger.get(key, zero), f"{key}: balance {balances.get(key)} != ledger"

    credits = Counter()
    by_fill: dict[str, Counter] = {}
    for user, asset, kind, reference, amount in _query(
        "portfolio_svc",
        "SELECT user_id::text, asset_id, kind, reference, amount FROM ledger_entries "
        "WHERE user_id::text = ANY(%s) AND kind IN ('CREDIT', 'FILL_DEBIT', 'FILL_CREDIT', 'FEE')",
        (user_ids,),
    ):
        if kind == "CREDIT":
            credits[(user, asset)] += amount
        else:
            by_fill.setdefault(reference, Counter())[(user, kind, asset)] += amount
    assert credits == Counter({(user, "USDT"): starting for user in user_ids}), "credits beyond the starting funds"

    recorded: dict[str, Counter] = {}
    totals = Counter({(user, "USDT"): starting for user in user_ids})
    for fill_id, user, side, base, quote, qty, quote_qty, fee, fee_asset in _query(
        "transaction_svc",
        "SELECT fill_id, user_id::text, side, base_asset, quote_asset, qty, quote_qty, fee, fee_asset "
        "FROM transactions WHERE user_id::text = ANY(%s)",
        (user_ids,),
    ):
        moves = recorded.setdefault(fill_id, Counter())
        for kind, (asset, amount) in _movements(side, base, quote, qty, quote_qty).items():
            moves[(user, kind, asset)] += amount
            totals[(user, asset)] += amount if kind == "FILL_CREDIT" else -amount
        moves[(user, "FEE", fee_asset)] += fee
        totals[(user, fee_asset)] -= fee

    def nonzero(moves: Counter) -> dict:
        return {key: amount for key, amount in moves.items() if amount}

    assert set(recorded) == fill_ids, "transaction_svc's fills are not order_svc's"
    assert set(by_fill) == fill_ids, "the ledger's fills are not order_svc's"
    for fill_id in fill_ids:
        assert nonzero(by_fill[fill_id]) == nonzero(recorded[fill_id]), f"fill {fill_id}: ledger != transaction"
    for key in set(balances) | set(totals):
        held = sum(balances.get(key, zero))
        assert held == totals[key], f"{key}: held {held} != credits + recorded transactions {totals[key]}"


@pytest.fixture
def system(log_dir):
    running = System(log_dir, env={"CONSUMER_COMMIT_INTERVAL_S": COMMIT_INTERVAL_S})
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
        log_sizes = _log_sizes(log_dir)  # what the inboxes skip from here on is the faults' doing

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

        # Faults: each consumer CONSUMER_KILLS times, each worker once, the web servers and beats of MORE_KILLS,
        # the broker once, at seeded moments inside the order window: a process killed n times once in each of
        # n equal parts of it, so it is never killed again while it is still starting.
        kills = Counter(system.consumers * CONSUMER_KILLS + system.workers + list(MORE_KILLS))
        span = ORDER_WINDOW_S - 8
        schedule = [(3 + span * (k + rng.random()) / n, name) for name, n in sorted(kills.items()) for k in range(n)]
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
        unanswered: list[tuple[Trader, str]] = []  # placements never answered: (trader, client order id)
        statuses: Counter[int | None] = Counter()
        retried: Counter[str] = Counter()
        lock = threading.Lock()
        plans = [(rng.choice(traders), _random_order(rng, price), f"faults-{i}") for i in range(ORDERS)]

        def place(item: tuple[Trader, dict, str]) -> None:
            trader, order, client_id = item
            if order.get("cancel"):
                with lock:
                    mine = [oid for t, oid in placed if t is trader]
                if not mine:
                    return
                result, again = _call(trader, "DELETE", "order_svc", f"/api/orders/{mine[-1]}")
            else:
                body = {**order, "newClientOrderId": client_id}
                result, again = _call(trader, "POST", "order_svc", "/api/orders", json_body=body)
                with lock:
                    if result is None:
                        unanswered.append((trader, client_id))
                    elif result.status in (200, 201):  # 200: an earlier attempt had placed it, its answer lost
                        placed.append((trader, result.json()["orderId"]))
                        if result.status == 200:
                            statuses["placed before its answer was lost"] += 1
            with lock:
                statuses[result and result.status] += 1
                retried["order_svc"] += again

        def read_balances() -> None:
            reader = random.Random(SEED + 2)
            while not stop_trading.is_set():
                result, again = _call(reader.choice(traders), "GET", "portfolio_svc", "/api/balances/")
                with lock:
                    statuses[f"balances {result and result.status}"] += 1
                    retried["portfolio_svc"] += again
                stop_trading.wait(0.3)

        trading = threading.Thread(target=trade_flow, daemon=True)
        reading = threading.Thread(target=read_balances, daemon=True)
        injector = threading.Thread(target=inject, daemon=True)
        trading.start()
        reading.start()
        injector.start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            sent = []
            for i, item in enumerate(plans):
                sent.append(pool.submit(place, item))
                time.sleep(ORDER_WINDOW_S / ORDERS * (0.5 + rng.random()))
                if i % 100 == 0:
                    print(f"[faults] {i} orders sent, faults so far: {sum(faults.values())}", flush=True)
        for future in sent:
            future.result()  # a client's own failure fails the test
        injector.join(timeout=120)
        time.sleep(5)
        stop_trading.set()
        trading.join()
        reading.join()
        for trader, client_id in unanswered:  # placed or not: the order book says
            placed += [
                (trader, oid)
                for (oid,) in _query(
                    "order_svc",
                    "SELECT id::text FROM orders WHERE user_id = %s AND client_order_id = %s",
                    (trader.user_id, client_id),
                )
            ]

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
    rows = _query(
        "order_svc",
        "SELECT o.id::text, o.status, s.state, o.side, o.user_id::text, o.client_order_id FROM orders o "
        "JOIN sagas s ON s.order_id = o.id WHERE o.user_id::text = ANY(%s)",
        (user_ids,),
    )
    orders = {oid: (status, saga_state, side, user) for oid, status, saga_state, side, user, _ in rows}
    # Every order a client placed, once, whatever a web kill did to its answer; none it did not ask for.
    assert sorted(orders) == sorted(oid for _, oid in placed)
    assert {client_id for *_, client_id in rows} <= {client_id for *_, client_id in plans}
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

    _check_ledger_and_transactions(user_ids, set(fill_ids), STARTING_FUNDS)

    expected: Counter[str] = Counter({"USDT": STARTING_FUNDS * USERS})
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
    duplicates = _duplicates_since(log_dir, log_sizes)
    counts = {
        "orders": len(orders),
        "statuses": dict(Counter(s for s, *_ in orders.values())),
        "http": dict(statuses),
        "fills": len(fills),
        "faults_injected": sum(faults.values()),
        "fault_test_s": round(time.time() - started_at),
        "faults": dict(faults),
        "events_relayed": relayed,
        "duplicates_skipped_by_inboxes": sum(duplicates.values()),
        "duplicates_by_consumer": dict(duplicates),
        "requests_sent_again": dict(retried),
        "placements_never_answered": len(unanswered),
    }
    with capsys.disabled():
        print("\n[faults] " + json.dumps(counts))
    assert sum(faults.values()) == len(schedule)
    assert len(fills) > 0 and relayed > 0
    # The kills cut work in flight: batches handled but not yet committed to Kafka came again.
    assert sum(duplicates.values()) > 0, "no kill interrupted a consumer's work: nothing was redelivered"
    # A killed gunicorn's successor binds at once and queues new connections until it serves, so only requests in
    # flight at the kill fail; with the placements' four threads some always are.
    assert sum(retried.values()) > 0, "no web kill met a client's request"

    # Leave no open order behind: later tests' trades would fill these older orders first.
    system.cancel_open_orders()
