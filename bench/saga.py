#!/usr/bin/env python
"""Order saga latency under fixed order rates, against a bare PostgreSQL INSERT+COMMIT loop on the same cluster.

Starts the whole platform as `manage_all.py up` runs it (its own processes, free ports, the shared local
infrastructure), registers traders, then places marketable MARKET BUY orders at fixed rates (open loop, from this
separate process) while publishing trades. It reads `order-events` from Kafka like any downstream client and
reports, per rate, p50/p95/p99 of the POST latency, of the time to NEW (order.accepted seen) and of the time to
FILLED (order.filled with status FILLED seen), and whether the backlog held. Prints one JSON object.

    .venv/bin/python bench/saga.py [--rates 50,100,200] [--seconds 30] [--tracing on|off]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.tests.settings")


def progress(message: str) -> None:
    print(f"[saga-bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


def baseline_commits_per_s(seconds: float = 5.0) -> float:
    """A bare INSERT + COMMIT loop on one connection, as fast as the cluster takes it."""
    import psycopg2

    from tests.e2e.conftest import manage_all

    conn = psycopg2.connect(manage_all.infra.database_url("order_svc"))
    with conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_commits (id bigserial primary key, payload text, at timestamptz)")
    conn.commit()
    count = 0
    started = time.perf_counter()
    with conn.cursor() as cursor:
        while time.perf_counter() - started < seconds:
            cursor.execute("INSERT INTO bench_commits (payload, at) VALUES (%s, now())", ["x" * 200])
            conn.commit()
            count += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


class EventWatch:
    """Follows order-events from its current end and timestamps what each order went through."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"saga-bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        self.accepted: dict[str, float] = {}
        self.filled: dict[str, float] = {}
        self.other: dict[str, str] = {}
        self._stop = threading.Event()
        self.consumer.subscribe(["order-events"])
        deadline = time.monotonic() + 30
        while not self.consumer.assignment() and time.monotonic() < deadline:
            self.consumer.poll(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(500, 0.1):
                if msg.error():
                    continue
                now = time.monotonic()
                doc = json.loads(msg.value())
                order_id = doc["data"].get("order_id")
                if doc["type"] == "order.accepted":
                    self.accepted.setdefault(order_id, now)
                elif doc["type"] == "order.filled" and doc["data"].get("status") == "FILLED":
                    self.filled.setdefault(order_id, now)
                elif doc["type"] in ("order.rejected", "order.cancelled"):
                    self.other.setdefault(order_id, doc["type"])

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()
        self.consumer.close()


def run_rate(system, traders, watch, rate: int, seconds: float) -> dict:
    from common.testing.http import http

    sent: dict[str, float] = {}
    post_ms: list[float] = []
    errors = 0
    lock = threading.Lock()
    url = f"{system.urls['order_svc']}/api/orders"
    body = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}

    def place(i: int) -> None:
        nonlocal errors
        trader = traders[i % len(traders)]
        started = time.monotonic()
        result = http("POST", url, json_body=body, headers={"Authorization": f"Bearer {trader.token}"}, timeout=30)
        elapsed = time.monotonic() - started
        with lock:
            if result.status == 201:
                sent[result.json()["orderId"]] = started
                post_ms.append(elapsed * 1000)
            else:
                errors += 1

    total = int(rate * seconds)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(64, rate)) as pool:
        for i in range(total):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(place, i)
    send_done = time.monotonic()
    # Drain: wait until every order is accepted and filled (or 20 s pass).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(o in watch.filled or o in watch.other for o in sent):
            break
        time.sleep(0.2)
    new_ms = [(watch.accepted[o] - t) * 1000 for o, t in sent.items() if o in watch.accepted]
    filled_ms = [(watch.filled[o] - t) * 1000 for o, t in sent.items() if o in watch.filled]
    # The backlog held when every order got through and the last second's orders were not slower to be
    # accepted than the first second's by more than half a second (a queue growing through the run).
    first = [(watch.accepted[o] - t) * 1000 for o, t in sent.items() if o in watch.accepted and t - t0 < 1]
    last = [(watch.accepted[o] - t) * 1000 for o, t in sent.items() if o in watch.accepted and send_done - t < 1]
    complete = len(new_ms) == len(sent) and len(sent) == total
    # An open-loop sender that could not keep its schedule means the POSTs themselves were the bottleneck.
    kept_rate = total / (send_done - t0) >= 0.95 * rate
    growing = bool(first and last) and statistics.median(last) - statistics.median(first) > 500
    return {
        "rate": rate,
        "orders": total,
        "achieved_send_rate": round(total / (send_done - t0), 1),
        "post_errors": errors,
        "post_p50_ms": percentile(post_ms, 50),
        "post_p95_ms": percentile(post_ms, 95),
        "post_p99_ms": percentile(post_ms, 99),
        "new_p50_ms": percentile(new_ms, 50),
        "new_p95_ms": percentile(new_ms, 95),
        "new_p99_ms": percentile(new_ms, 99),
        "filled_p50_ms": percentile(filled_ms, 50),
        "filled_p95_ms": percentile(filled_ms, 95),
        "filled_p99_ms": percentile(filled_ms, 99),
        "accepted": len(new_ms),
        "filled": len(filled_ms),
        "rejected_or_expired": sum(1 for o in sent if o in watch.other),
        "sustained": complete and kept_rate and not growing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--traders", type=int, default=30)
    parser.add_argument("--tracing", choices=["on", "off"], default="on")
    args = parser.parse_args()

    import tempfile

    from tests.e2e.conftest import manage_all
    from tests.e2e.system import System, Trader, publish_trades

    bootstrap = f"127.0.0.1:{manage_all.infra.KAFKA_PORT}"
    log_dir = Path(tempfile.mkdtemp(prefix="saga-bench-"))
    env = {"TRACING_ENABLED": "true" if args.tracing == "on" else "false", "LOG_LEVEL": "WARNING"}
    system = System(log_dir, env=env)
    stop_trades = threading.Event()
    try:
        progress(f"starting the platform (logs in {log_dir})...")
        system.start_all()
        progress("measuring the bare database commit rate...")
        baseline = baseline_commits_per_s()
        progress(f"registering {args.traders} traders...")
        traders = [Trader.register(system) for _ in range(args.traders)]
        for trader in traders:
            trader.wait_funded(timeout=120)
        publish_trades("BTCUSDT", [("50000.00", "0.001")])
        time.sleep(2)

        def trades() -> None:
            while not stop_trades.is_set():
                publish_trades("BTCUSDT", [("50000.00", "1.0")])
                stop_trades.wait(0.05)

        threading.Thread(target=trades, daemon=True).start()
        watch = EventWatch(bootstrap)
        results = []
        for rate in [int(r) for r in args.rates.split(",")]:
            progress(f"{rate} orders/s for {args.seconds:.0f}s...")
            results.append(run_rate(system, traders, watch, rate, args.seconds))
            progress(json.dumps(results[-1]))
        watch.stop()
    finally:
        stop_trades.set()
        system.stop_all()
    sustained = [r["rate"] for r in results if r["sustained"]]
    print(
        json.dumps(
            {
                "benchmark": "order saga latency",
                "tracing": args.tracing,
                "seconds_per_rate": args.seconds,
                "rates": results,
                "max_sustained_per_s": max(sustained) if sustained else 0,
                "baseline_db_commits_per_s": round(baseline),
                "events": sum(r["orders"] for r in results),
                "platform_per_s": max(sustained) if sustained else 0,
                "baseline_per_s": round(baseline),
                "ratio": round((max(sustained) if sustained else 0) / baseline, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
