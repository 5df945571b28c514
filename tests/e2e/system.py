"""The whole platform as real processes (the process table of `manage_all.py up`), and a client that drives it.

Tests start it once per module on free ports against the shared test infrastructure, talk to it only over
HTTP and Kafka, and may SIGKILL and restart any of its processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import namespace
from common.events import Envelope
from common.testing.http import HttpResult, http
from common.testing.kafka import produce
from tests.e2e.conftest import ROOT, RunningProcess, free_port, manage_all, wait_http

KAFKA = f"127.0.0.1:{manage_all.infra.KAFKA_PORT}"


def until(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def in_namespace(ns: str) -> Iterator[None]:
    """Build commands and environments for another namespace ("" the real platform's) than this run's."""
    previous = os.environ.get(namespace.ENV)
    os.environ[namespace.ENV] = namespace.validate(ns)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[namespace.ENV]
        else:
            os.environ[namespace.ENV] = previous


class System:
    """Every process of the platform but the market-data feed (tests publish the trades they need).

    In this run's namespace; `ns=""` (with `watcher=True`) is the real platform's namespace, which only the
    isolation test starts, and only when no platform runs there.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        exclude: tuple[str, ...] = ("analytics_svc_feed",),
        ns: str | None = None,
        watcher: bool = False,
    ):
        self.log_dir = log_dir
        self.ns = namespace.current() if ns is None else ns
        self.env = {**(env or {}), namespace.ENV: self.ns}
        ports = {svc: [free_port()] for svc in manage_all.SERVICES}
        self.urls = {svc: f"http://127.0.0.1:{ports[svc][0]}" for svc in manage_all.SERVICES}
        self.specs: dict[str, manage_all.Process] = {}
        with in_namespace(self.ns):
            for proc in manage_all.process_table(ports=ports):
                if proc.name in exclude or (proc.name == "gateway_watcher" and not watcher):
                    continue
                if proc.name.endswith("_beat"):  # a schedule file of this run's own, so a running `up` keeps its own
                    proc.command[proc.command.index("--schedule") + 1] = str(log_dir / f"{self.ns}{proc.name}-sched")
                proc.env = {**proc.environment(), **proc.env}  # resolved now, in its namespace
                self.specs[proc.name] = proc
        self.running: dict[str, RunningProcess] = {}

    def database_url(self, service: str) -> str:
        return manage_all.infra.database_url(service, self.ns)

    @property
    def consumers(self) -> list[str]:
        return [name for name in self.specs if "_consumers" in name]

    @property
    def workers(self) -> list[str]:
        return [name for name in self.specs if name.endswith("_worker")]

    def migrate(self) -> None:
        for service in manage_all.SERVICES:
            with in_namespace(self.ns):
                env = {**os.environ, **manage_all.service_env(service)}
            result = subprocess.run(
                [str(manage_all.PY), "manage.py", "migrate", "--noinput"],
                cwd=ROOT / service,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{service} migrate failed:\n{result.stdout}{result.stderr}"

    def start(self, name: str) -> None:
        self.running[name] = RunningProcess(self.specs[name], self.log_dir, extra_env=self.env)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.running.pop(name).stop(sig)

    def restart(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.stop(name, sig)
        self.start(name)

    def start_all(self) -> None:
        self.migrate()
        for name in self.specs:
            self.start(name)
        for url in self.urls.values():
            wait_http(f"{url}/readyz", timeout=120)

    @property
    def addresses(self) -> set[str]:
        return {url.removeprefix("http://") for url in self.urls.values()}

    def stop_all(self) -> None:
        """All at once (one after the other, each may take its grace time: a SIGTERM must end a run in seconds)."""
        processes = list(self.running.values())
        self.running.clear()
        RunningProcess.stop_all(processes)

    def cancel_open_orders(self) -> int:
        """Cancel every open order, through the API as its own user, so the book is empty.

        Trades fill the oldest crossing orders first: an order left open by an earlier run (or by `up`'s demo
        user) would take the liquidity a test's own order is waiting for.
        """
        import psycopg2

        from common.testing.auth import mint_access_token

        def open_orders() -> list[tuple[str, str]]:
            with psycopg2.connect(self.database_url("order_svc")) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT id::text, user_id::text FROM orders WHERE status IN ('NEW', 'PARTIALLY_FILLED')")
                rows = cursor.fetchall()
            conn.close()
            return rows

        rows = open_orders()
        for order_id, user_id in rows:
            token = mint_access_token(user_id)
            http(
                "DELETE",
                f"{self.urls['order_svc']}/api/orders/{order_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
        until(lambda: not open_orders(), timeout=60, what="every open order to be cancelled")
        return len(rows)

    def logs(self, *names: str) -> str:
        return "\n".join(f"--- {n}\n{p.log()[-4000:]}" for n, p in self.running.items() if not names or n in names)


@dataclass
class Trader:
    """A user of the platform, driving it over HTTP like a client would."""

    system: System
    email: str
    token: str
    user_id: str

    @classmethod
    def register(cls, system: System, password: str = "Str0ng-Paper-Trading!") -> Trader:  # noqa: S107
        email = f"trader-{uuid.uuid4().hex[:10]}@example.com"
        users = system.urls["user_svc"]
        created = http(
            "POST",
            f"{users}/api/auth/register",
            json_body={"email": email, "password": password, "display_name": "E2E"},
        )
        # 202 whether or not the address was free (the answer never tells); logins do not wait for the confirmation.
        assert created.status == 202, created.text
        login = http("POST", f"{users}/api/auth/login", json_body={"email": email, "password": password})
        assert login.status == 200, login.text
        body = login.json()
        return cls(system, email, body["access"], body["user"]["id"])

    def call(self, method: str, service: str, path: str, **kwargs) -> HttpResult:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return http(method, f"{self.system.urls[service]}{path}", headers=headers, **kwargs)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        result = self.call("GET", "portfolio_svc", "/api/balances/")
        assert result.status == 200, result.text
        rows = result.json()
        rows = rows.get("results", rows) if isinstance(rows, dict) else rows
        return {r["asset"]: (Decimal(r["available"]), Decimal(r["locked"])) for r in rows}

    def wait_funded(self, timeout: float = 60) -> dict[str, tuple[Decimal, Decimal]]:
        return until(
            lambda: (b := self.balances()).get("USDT", (0, 0))[0] > 0 and b,
            timeout=timeout,
            what=f"the default portfolio of {self.email}",
        )

    def place(self, **order: Any) -> HttpResult:
        return self.call("POST", "order_svc", "/api/orders", json_body=order)

    def order(self, order_id: str) -> dict[str, Any]:
        result = self.call("GET", "order_svc", f"/api/orders/{order_id}")
        assert result.status == 200, result.text
        return result.json()

    def wait_status(self, order_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        return until(
            lambda: (o := self.order(order_id))["status"] in statuses and o,
            timeout=timeout,
            what=f"order {order_id} to reach {statuses}",
        )


_trade_seq = 0


def publish_trades(symbol: str, trades: list[tuple[str, str]], *, buyer_is_maker: bool = False) -> None:
    """Put trades (price, qty) on the real market-data topic, as the feed would, with fresh rising ids."""
    global _trade_seq
    messages = []
    for price, qty in trades:
        _trade_seq += 1
        now_ms = int(time.time() * 1000)
        trade_id = time.time_ns() // 1000 + _trade_seq  # microseconds: above any id a feed has used
        data = {
            "e": "trade",
            "E": now_ms,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "T": now_ms,
            "m": buyer_is_maker,
        }
        envelope = Envelope.new("trade", source="e2e-feed", subject=symbol, data=data)
        messages.append((symbol.encode(), envelope.to_json()))
    produce(KAFKA, "market-data", messages)


def binance_exchange(gateway: str, key: str | None = None, secret: str | None = None):
    """ccxt's own binance class pointed at the gateway: spot only, nothing from Binance's other APIs (sapi,
    futures), with an API key when given."""
    import ccxt

    exchange = ccxt.binance(
        {
            **({"apiKey": key, "secret": secret} if key else {}),
            "timeout": 15_000,
            # load_markets would also read the futures exchanges' exchangeInfo, margin pairs and currencies.
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False},
        }
    )
    exchange.urls["api"] = {**exchange.urls["api"], "public": f"{gateway}/api/v3", "private": f"{gateway}/api/v3"}
    return exchange
