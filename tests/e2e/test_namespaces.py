"""Runs never cross: this run's namespace leaves the real platform's data, routes and queues alone, and a run
that is sent SIGTERM leaves no process behind.

The real platform here is the empty namespace: a running `manage_all.py up` when there is one (then it is
only watched: nothing is published to it), else the same processes started by this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
import redis

from common import namespace
from common.testing.kafka import end_offsets, read_since
from tests.e2e.conftest import ROOT, manage_all, namespaces
from tests.e2e.system import KAFKA, System, Trader, in_namespace, publish_trades, until

infra = manage_all.infra
# Prices no feed gives: where either shows up, it came from this module's trades.
OURS = "43210.98"  # this run's namespace
THEIRS = "43111.11"  # the real platform's, only when this module started it


def _registry(ns: str) -> set[str]:
    from common import etcd

    client = etcd.local_client(etcd.WATCHER, port=infra.ETCD_PORT)
    return {json.loads(value)["address"] for value, _ in client.get_prefix(namespace.registry_prefix(ns))}


def _query(service: str, ns: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg2.connect(infra.database_url(service, ns)) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params or [])
        rows = cursor.fetchall()
    conn.close()
    return rows


def _candles_at(ns: str, price: str) -> int:
    return _query(
        "analytics_svc", ns, "SELECT count(*) FROM ohlcv_1m WHERE symbol = 'BTCUSDT' AND %s IN (high, low)", [price]
    )[0][0]


def _btc_price(ns: str) -> Decimal | None:
    rows = _query("portfolio_svc", ns, "SELECT price FROM prices WHERE symbol = 'BTCUSDT'")
    return rows[0][0] if rows else None


@pytest.fixture(scope="module")
def platform(log_dir):
    """The real platform's processes: (System or None when a running `up` is watched, its addresses)."""
    live = _registry("")
    if live:
        yield None, live
        return
    outer = System(log_dir, ns="", watcher=True)
    try:
        outer.start_all()
        until(lambda: outer.addresses <= _registry(""), timeout=30, what="the real platform's instances to register")
        yield outer, outer.addresses
    finally:
        outer.stop_all()


@pytest.fixture(scope="module")
def system(log_dir, platform):
    running = System(log_dir)
    try:
        running.start_all()
        running.cancel_open_orders()
        yield running
    finally:
        running.stop_all()


class RegistryWatch(threading.Thread):
    """Samples the real platform's registry and gateway upstreams while this run's flows go on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.registered: set[str] = set()
        self.routed = ""
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        upstreams = infra.gateway_home("") / "upstreams.conf"
        while not self._halt.wait(0.3):
            self.registered |= _registry("")
            self.routed += upstreams.read_text() if upstreams.exists() else ""
            self.samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _celery_keys(client: redis.Redis, ns: str) -> tuple[set[str], set[str]]:
    """(keys outside the namespace's prefix, keys inside it)."""
    prefix = namespace.redis_prefix(ns)
    keys = {k.decode() for k in client.scan_iter(count=1000)}
    return {k for k in keys if not k.startswith(prefix)}, {k for k in keys if k.startswith(prefix)}


def test_a_run_in_its_namespace_leaves_the_running_platform_alone(platform, system):
    outer, outer_addresses = platform
    ns = namespace.current()
    assert ns, "the e2e run has a namespace of its own"
    before = {
        "market-data": end_offsets(KAFKA, "market-data", ns=""),
        "order-events": end_offsets(KAFKA, "order-events", ns=""),
    }
    orders_before = _query("order_svc", "", "SELECT count(*) FROM orders")[0][0]
    watch = RegistryWatch()
    watch.start()

    trader = Trader.register(system)
    trader.wait_funded()
    placed = trader.place(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.00100", price=OURS)
    assert placed.status == 201, placed.text
    order_id = placed.json()["orderId"]
    trader.wait_status(order_id, "NEW")
    publish_trades("BTCUSDT", [(OURS, "0.5")])  # this run's market-data topic
    trader.wait_status(order_id, "FILLED")
    until(lambda: _candles_at(ns, OURS) > 0, timeout=60, what="this run's candle at its own price")
    until(lambda: _btc_price(ns) == Decimal(OURS), timeout=60, what="this run's BTC price")
    if outer is not None:  # started here, so ours to publish to: it does consume its own market-data
        with in_namespace(""):
            publish_trades("BTCUSDT", [(THEIRS, "0.5")])
        until(lambda: _candles_at("", THEIRS) > 0, timeout=60, what="the real platform's candle of its own trade")
        until(lambda: _btc_price("") == Decimal(THEIRS), timeout=60, what="the real platform's BTC price")
    time.sleep(2)  # what would have crossed has had time to arrive
    watch.stop()

    # Candles, prices, orders: nothing of this run in the real platform's databases.
    assert _candles_at("", OURS) == 0
    assert _btc_price("") != Decimal(OURS)
    assert _query("order_svc", "", "SELECT count(*) FROM orders WHERE user_id = %s", [trader.user_id])[0][0] == 0
    if outer is not None:
        assert _query("order_svc", "", "SELECT count(*) FROM orders")[0][0] == orders_before
    # Nor on its topics.
    trades = [json.loads(m.value())["data"] for m in read_since(KAFKA, "market-data", before["market-data"], ns="")]
    assert OURS not in {t["p"] for t in trades}
    events = read_since(KAFKA, "order-events", before["order-events"], ns="")
    assert not [m for m in events if trader.user_id.encode() in (m.value() or b"")]
    # The real platform's registry and gateway never held one of this run's instances, throughout.
    assert watch.samples > 10
    assert outer_addresses <= watch.registered
    assert not watch.registered & system.addresses
    assert not [address for address in system.addresses if address in watch.routed]
    # Celery: this run's queues live under its own Redis prefix, and no key outside it is this run's.
    outside, inside = _celery_keys(redis.Redis(host="127.0.0.1", port=infra.REDIS_PORT), ns)
    assert not [k for k in outside if ns in k]
    assert any(f"{namespace.queue('order_svc')}" in k for k in inside), sorted(inside)[:20]


# --- SIGTERM ends a run and every process it started ----------------------------------------------------


def _env_without_namespace() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != namespace.ENV}


def _owned_namespace(pid: int, timeout: float) -> str:
    record = until(
        lambda: next((r for r in namespaces.records() if r.owner_pid == pid), None),
        timeout=timeout,
        what=f"process {pid} to make its namespace",
    )
    return record.name


def _sigterm_leaves_nothing(cmd: list[str], log: Path, *, started: int, what: str) -> None:
    with log.open("wb") as out:
        run = subprocess.Popen(
            cmd, cwd=ROOT, env=_env_without_namespace(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        ns = _owned_namespace(run.pid, timeout=120)
        until(
            lambda: len(namespaces.processes(ns)) >= started or run.poll() is not None,
            timeout=300,
            what=f"{what} to start {started} processes",
        )
        assert run.poll() is None, f"{what} ended before it was signalled:\n{log.read_text()[-3000:]}"
        run.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        until(
            lambda: not namespaces.processes(ns),
            timeout=10,
            interval=0.2,
            what=f"every process of {what} to be gone 10 s after its SIGTERM",
        )
        gone_after = time.monotonic() - signalled
        run.wait(60)  # it still removes its namespace's topics, databases and keys
        assert ns not in {r.name for r in namespaces.records()}, "the namespace was not removed"
        assert not (infra.RUN / "ns" / ns).exists()
        assert gone_after < 10
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_sigterm_stops_the_saga_bench_and_every_process_it_started(tmp_path):
    _sigterm_leaves_nothing(
        [str(manage_all.PY), "bench/saga.py", "--rates", "5", "--seconds", "60"],
        tmp_path / "saga-bench.log",
        started=19,  # the platform's processes but the feed and the watcher (more with gunicorn's workers)
        what="bench/saga.py",
    )


def test_sigterm_stops_the_e2e_harness_and_every_process_it_started(tmp_path):
    marker = uuid.uuid4().hex[:8]
    _sigterm_leaves_nothing(
        [
            str(manage_all.PY),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--basetemp={tmp_path / marker}",
            "tests/e2e/test_flows.py::test_cancel_gives_the_funds_back",
        ],
        tmp_path / "harness.log",
        started=19,
        what="the e2e harness",
    )


def test_the_next_run_sweeps_what_a_killed_run_left():
    from common.kafka import admin_client

    owner = subprocess.Popen(["sleep", "300"])
    ns = namespaces.create("dead", owner_pid=owner.pid)
    left = subprocess.Popen(["sleep", "300"], env={**os.environ, namespace.ENV: ns.name}, start_new_session=True)
    client = redis.Redis(host="127.0.0.1", port=infra.REDIS_PORT)
    client.set(f"{namespace.redis_prefix(ns.name)}celery-task-meta-x", b"1")
    admin = admin_client(KAFKA)

    def leftovers() -> dict[str, object]:
        return {
            "topics": [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{ns.name}.")],
            "databases": _query(
                "order_svc", "", "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{ns.name}"]
            ),
            "keys": list(client.scan_iter(match=f"{namespace.redis_prefix(ns.name)}*")),
            "processes": namespaces.processes(ns.name),
            "record": (infra.RUN / "ns" / ns.name).exists(),
        }

    try:
        assert ns.name not in namespaces.sweep()  # its owner is alive: not touched
        assert all(leftovers().values())
        owner.kill()
        owner.wait()  # the run is killed with SIGKILL: nothing of it cleaned up

        assert ns.name in namespaces.sweep()
        assert not any(leftovers().values()), leftovers()
        assert left.wait(5) is not None
    finally:
        for proc in (owner, left):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
