"""Binance's request security through the gateway: API keys made in user_svc sign requests that ccxt and
python-binance send unchanged; nginx checks each with user_svc (infra/nginx/binance.js) and forwards it to the
service that owns the path with a short-lived access token, or answers Binance's refusal itself.

Checked on GET /api/v3/account (portfolio_svc): the balances are the trader's default portfolio, a read key
cannot trade, a wrong secret, a stale timestamp and a revoked key are refused with Binance's codes, and a revoked
key stops working with the next request. And on order_svc's trading endpoints, through both clients: a LIMIT order
rests, is listed open and is cancelled; a MARKET order fills against a published trade and shows in myTrades; an
order the balance cannot pay is Binance's -2010; a read key cannot place.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import urlencode

import ccxt
import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from common.testing.http import http
from tests.e2e.conftest import manage_all
from tests.e2e.system import System, Trader, binance_exchange, publish_trades, until


@pytest.fixture(scope="module")
def system(log_dir):
    running = System(log_dir, env={"TRACING_ENABLED": "false"})
    try:
        running.start_all()
        running.cancel_open_orders()  # no older module's order takes this module's trades
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def gateway(system, watcher) -> str:
    url = f"http://127.0.0.1:{manage_all.infra.gateway_port()}"
    for path, service in (("/api/users/me", "user_svc"), ("/api/balances/", "portfolio_svc")):
        until(
            lambda p=path, s=service: http("GET", f"{url}{p}").headers.get("X-Served-By", "").startswith(f"{s}@"),
            timeout=60,
            what=f"the gateway to route {path} to {service}",
        )
    return url


@pytest.fixture(scope="module")
def trader(system, gateway) -> Trader:
    trader = Trader.register(system)
    trader.wait_funded()
    return trader


def new_key(trader: Trader, gateway: str, *permissions: str) -> tuple[str, str, str]:
    """(id, api key, secret) of a key made through the gateway, as a user makes one."""
    made = http(
        "POST",
        f"{gateway}/api/users/me/api-keys",
        json_body={"label": "e2e", "permissions": list(permissions or ["read"])},
        headers={"Authorization": f"Bearer {trader.token}"},
    )
    assert made.status == 201, made.text
    return made.json()["id"], made.json()["api_key"], made.json()["secret"]


def signed_get(gateway: str, path: str, key: str, secret: str, **params) -> object:
    query = urlencode({**params, "timestamp": params.get("timestamp", int(time.time() * 1000))})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return http("GET", f"{gateway}{path}?{query}&signature={signature}", headers={"X-MBX-APIKEY": key})


def test_ccxt_fetch_balance_is_the_default_portfolio(trader, gateway):
    _, key, secret = new_key(trader, gateway, "read")
    exchange = binance_exchange(gateway, key, secret)

    balance = exchange.fetch_balance()

    usdt = trader.balances()["USDT"]
    assert Decimal(str(balance["USDT"]["free"])) == usdt[0]
    assert Decimal(str(balance["USDT"]["used"])) == usdt[1]


def test_python_binance_get_account_reads_free_and_locked_and_the_keys_permission(trader, gateway):
    _, key, secret = new_key(trader, gateway, "read", "trade")
    client = Client(key, secret, ping=False)
    client.API_URL = f"{gateway}/api"

    account = client.get_account()

    assert account["canTrade"] is True and account["accountType"] == "SPOT"
    balances = {row["asset"]: (Decimal(row["free"]), Decimal(row["locked"])) for row in account["balances"]}
    assert balances["USDT"] == trader.balances()["USDT"]


def test_a_read_key_is_told_it_cannot_trade(trader, gateway):
    _, key, secret = new_key(trader, gateway, "read")

    answer = signed_get(gateway, "/api/v3/account", key, secret)

    assert answer.status == 200, answer.text
    assert answer.json()["canTrade"] is False


@pytest.mark.parametrize(
    ("case", "code", "status"),
    [("wrong secret", -1022, 400), ("stale", -1021, 400), ("unknown key", -2015, 401), ("no key", -2014, 401)],
)
def test_refusals_are_answered_by_the_gateway_in_binances_shape(trader, gateway, case, code, status):
    _, key, secret = new_key(trader, gateway, "read")
    stamp = int(time.time() * 1000) - (120_000 if case == "stale" else 0)
    answer = signed_get(
        gateway,
        "/api/v3/account",
        {"unknown key": "Z" * 64, "no key": ""}.get(case, key),
        "not-the-secret" if case == "wrong secret" else secret,
        timestamp=stamp,
    )

    assert (answer.status, answer.json()) == (status, {"code": code, "msg": answer.json()["msg"]}), answer.text
    assert "X-Served-By" not in answer.headers, "a refused request never reaches the service"


def test_python_binance_raises_binances_error_for_a_revoked_key_at_the_next_request(trader, gateway):
    key_id, key, secret = new_key(trader, gateway, "read")
    client = Client(key, secret, ping=False)
    client.API_URL = f"{gateway}/api"
    client.get_account()

    revoked = http(
        "DELETE", f"{gateway}/api/users/me/api-keys/{key_id}", headers={"Authorization": f"Bearer {trader.token}"}
    )
    assert revoked.status == 204
    with pytest.raises(BinanceAPIException) as refused:
        client.get_account()
    assert refused.value.code == -2015


def test_the_service_refuses_a_request_that_went_around_the_gateway(system, trader):
    # Straight to portfolio_svc's port: no token, so no one checked the key.
    answer = http("GET", f"{system.urls['portfolio_svc']}/api/v3/account", headers={"X-MBX-APIKEY": "A" * 64})
    assert (answer.status, answer.json()["code"]) == (401, -2014)
    platform_token = http(
        "GET",
        f"{system.urls['portfolio_svc']}/api/v3/account",
        headers={"Authorization": f"Bearer {trader.token}"},
    )
    assert (platform_token.status, platform_token.json()["code"]) == (401, -2014), "a login token is no API key"


def test_a_body_too_large_for_a_signed_request_is_refused_before_the_check(trader, gateway):
    _, key, _ = new_key(trader, gateway, "read")
    request = urllib.request.Request(  # noqa: S310 - the local gateway
        f"{gateway}/api/v3/account", data=b"x=" + b"1" * 20_000, method="POST", headers={"X-MBX-APIKEY": key}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - the local gateway
    assert refused.value.code == 413


# --- trading: order_svc's SIGNED endpoints ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bot(system, gateway) -> Trader:
    """A trader of its own for the trading tests (the account tests compare balances)."""
    trader = Trader.register(system)
    trader.wait_funded()
    return trader


def test_ccxt_places_lists_fetches_and_cancels_a_limit_order(bot, gateway):
    _, key, secret = new_key(bot, gateway, "read", "trade")
    exchange = binance_exchange(gateway, key, secret)

    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.002, 10000)  # 20 USDT, far below any trade

    assert order["status"] == "open" and isinstance(int(order["id"]), int)
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert exchange.fetch_order(order["id"], "BTC/USDT")["price"] == 10000
    cancelled = exchange.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert exchange.fetch_open_orders("BTC/USDT") == []
    assert order["id"] in [o["id"] for o in exchange.fetch_orders("BTC/USDT")]


def test_python_binance_market_order_fills_and_shows_in_my_trades(bot, gateway):
    _, key, secret = new_key(bot, gateway, "read", "trade")
    client = Client(key, secret, ping=False)
    client.API_URL = f"{gateway}/api"
    publish_trades("BTCUSDT", [("50000.00", "0.001")])  # a last price for the MARKET order's reservation

    def place() -> dict | None:
        try:
            return client.order_market_buy(symbol="BTCUSDT", quantity="0.00020")
        except BinanceAPIException as exc:
            if "No market price" in exc.message:  # order_svc has not seen the trade yet
                return None
            raise

    placed = until(place, timeout=30, what="order_svc to know BTCUSDT's last price")
    publish_trades("BTCUSDT", [("50010.00", "0.01")])

    assert placed["status"] in ("NEW", "FILLED", "PENDING_NEW"), placed
    order_id = placed["orderId"]
    until(
        lambda: client.get_order(symbol="BTCUSDT", orderId=order_id)["status"] == "FILLED",
        timeout=30,
        what="the MARKET order to fill",
    )
    trades = client.get_my_trades(symbol="BTCUSDT", orderId=order_id)
    assert sum(Decimal(t["qty"]) for t in trades) == Decimal("0.00020")
    assert all(t["isBuyer"] and t["orderId"] == order_id for t in trades)


def test_an_order_the_balance_cannot_pay_is_binances_insufficient_balance(bot, gateway):
    _, key, secret = new_key(bot, gateway, "read", "trade")
    client = Client(key, secret, ping=False)
    client.API_URL = f"{gateway}/api"

    with pytest.raises(BinanceAPIException) as refused:
        client.order_limit_buy(symbol="BTCUSDT", quantity="1.00000", price="90000.00")  # 90,000 USDT of 10,000

    assert refused.value.code == -2010
    assert refused.value.message == "Account has insufficient balance for requested action."
    assert client.get_open_orders(symbol="BTCUSDT") == []


def test_a_read_key_cannot_place_an_order(bot, gateway):
    _, key, secret = new_key(bot, gateway, "read")
    exchange = binance_exchange(gateway, key, secret)

    with pytest.raises(ccxt.AuthenticationError):
        exchange.create_order("BTC/USDT", "limit", "buy", 0.002, 10000)
