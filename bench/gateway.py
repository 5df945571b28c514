#!/usr/bin/env python
"""The gateway's cost: the same requests through nginx (discovered through etcd) and straight to the service.

Starts order_svc's web server as `up` runs it (registered in etcd) and the gateway watcher, then sends
GET /healthz and an authenticated GET /api/orders/ with N concurrent clients, first straight to the instance
(baseline), then through the gateway, interleaved in rounds so machine noise hits both alike. Prints one JSON
object: events, platform_per_s (through the gateway), baseline_per_s (direct), ratio, and p50/p99 per path.

    .venv/bin/python bench/gateway.py [--requests 3000] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.tests.settings")


def progress(message: str) -> None:
    print(f"[gateway-bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)


def hammer(host: str, port: int, path: str, headers: dict[str, str], requests: int, clients: int) -> dict:
    """`requests` GETs from `clients` keep-alive connections; returns throughput and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_client = requests // clients

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from _django import bench_namespace

    bench_namespace()  # its own gateway and registry: the instance it starts is the only one behind it

    from common.discovery import wait_registered
    from common.testing.auth import mint_access_token
    from tests.e2e.conftest import RunningProcess, free_port, manage_all, wait_http

    infra = manage_all.infra
    manage_all.run_everywhere(["migrate", "--noinput"], only=["order_svc"], quiet=True)
    log_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    port = free_port()
    table = {p.name: p for p in manage_all.process_table(ports={s: [port] for s in manage_all.SERVICES})}
    env = {"TRACING_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    web = RunningProcess(table["order_svc_web"], log_dir, extra_env=env)
    watcher = RunningProcess(table["gateway_watcher"], log_dir)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        assert wait_registered("order_svc", f"127.0.0.1:{port}"), "the instance did not register in etcd"
        time.sleep(2)  # the watcher renders and reloads nginx
        # Only this instance behind the namespace's gateway (a running `up` has a gateway of its own).
        upstreams = (infra.gateway_home() / "upstreams.conf").read_text()
        others = [
            line for line in upstreams.split("upstream order_svc")[1].split("}")[0].splitlines() if "server" in line
        ]
        if len(others) != 1:
            progress(f"note: {len(others)} order_svc instances are registered; the gateway balances over all")
        token = mint_access_token(uuid.uuid4())
        # (path straight to the instance, path through the gateway, headers)
        cases = {
            "healthz": ("/healthz", "/health/order_svc", {}),
            "orders": (
                "/api/orders/",
                "/api/orders/",
                {"Authorization": f"Bearer {token}", "Accept": "application/json"},
            ),
        }
        results: dict[str, dict[str, list[dict]]] = {name: {"direct": [], "gateway": []} for name in cases}
        for round_no in range(args.rounds):
            for name, (direct_path, gateway_path, headers) in cases.items():
                progress(f"round {round_no + 1}: {name}")
                n = args.requests // args.rounds
                results[name]["direct"].append(hammer("127.0.0.1", port, direct_path, headers, n, args.clients))
                results[name]["gateway"].append(
                    hammer("127.0.0.1", infra.gateway_port(), gateway_path, headers, n, args.clients)
                )
    finally:
        web.stop()
        watcher.stop()

    def merged(runs: list[dict]) -> dict:
        return {
            "per_s": round(sum(r["per_s"] for r in runs) / len(runs), 1),
            "p50_ms": round(sum(r["p50_ms"] for r in runs) / len(runs), 2),
            "p99_ms": round(sum(r["p99_ms"] for r in runs) / len(runs), 2),
            "errors": sum(r["errors"] for r in runs),
        }

    summary = {name: {way: merged(runs) for way, runs in ways.items()} for name, ways in results.items()}
    gateway_rate = sum(s["gateway"]["per_s"] for s in summary.values()) / len(summary)
    direct_rate = sum(s["direct"]["per_s"] for s in summary.values()) / len(summary)
    print(
        json.dumps(
            {
                "benchmark": "gateway overhead",
                "events": args.requests * len(cases) * 2,
                "clients": args.clients,
                "platform_per_s": round(gateway_rate, 1),
                "baseline_per_s": round(direct_rate, 1),
                "ratio": round(gateway_rate / direct_rate, 3),
                "paths": summary,
            }
        )
    )


if __name__ == "__main__":
    main()
