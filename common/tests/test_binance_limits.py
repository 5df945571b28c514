"""Binance's request weights and limits (common/binance_limits.py) and the SIGNED view contract (common/binance.py),
on the test project's /api/v3 endpoints, against the real Redis every service shares."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from common import binance_limits
from common.binance_limits import MINUTE, TEN_SECONDS
from common.testing.auth import mint_access_token


@pytest.fixture
def client(settings):
    return Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}")


def key_token(user_id=None, *permissions, api_key=None):
    return mint_access_token(
        user_id or uuid.uuid4(), api_key=api_key or str(uuid.uuid4()), api_key_permissions=list(permissions or ["read"])
    )


def used(response) -> int:
    return int(response["X-MBX-USED-WEIGHT-1M"])


def test_every_answer_says_the_weight_used_so_far_by_the_endpoints_weight(client):
    first = client.get("/api/v3/ping")
    depth = client.get("/api/v3/depth", {"limit": 1000})
    tickers = client.get("/api/v3/ticker/24hr")

    assert first.status_code == 200
    assert used(depth) - used(first) == 50, "a 1000-level book weighs 50"
    assert used(tickers) - used(depth) == 80, "every symbol's ticker weighs 80"
    assert used(client.get("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"})) - used(tickers) == 2


def test_the_platforms_own_api_is_not_counted(client):
    assert "X-MBX-USED-WEIGHT-1M" not in client.get("/api/")


def test_each_ip_has_its_own_weight_and_the_gateways_forwarded_address_is_the_client(settings):
    settings.TRUSTED_PROXIES = 1
    a = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"spoofed, 10.9.{uuid.uuid4().int % 250}.1")
    b = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.8.{uuid.uuid4().int % 250}.2")

    a.get("/api/v3/ping")
    a.get("/api/v3/ping")

    assert used(a.get("/api/v3/ping")) == 3
    assert used(b.get("/api/v3/ping")) == 1, "the entry the client wrote itself is not believed"


def test_past_the_limit_it_is_binances_429_with_retry_after_and_the_view_does_not_run(client, settings):
    settings.BINANCE_REQUEST_WEIGHT_1M = 10

    answers = [client.get("/api/v3/depth") for _ in range(3)]  # 5 each

    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == -1003 and "request weight per minute is 10" in refused.json()["msg"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert used(refused) == 15


def test_an_api_key_has_a_limit_of_its_own_across_addresses(settings):
    settings.BINANCE_REQUEST_WEIGHT_1M = 8
    token = key_token()
    clients = [Client(REMOTE_ADDR=f"10.7.{uuid.uuid4().int % 250}.{i}") for i in range(3)]

    answers = [c.get("/api/v3/order", HTTP_AUTHORIZATION=f"Bearer {token}") for c in clients]  # 4 each

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "API key request weight" in answers[-1].json()["msg"]
    assert [used(a) for a in answers] == [4, 4, 4], "the header is the IP's weight"


def test_new_orders_are_counted_per_account_in_ten_second_and_daily_windows(client, settings):
    settings.BINANCE_ORDERS_10S = 2
    user = uuid.uuid4()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key_token(user, 'read', 'trade')}"}

    answers = [client.post("/api/v3/order", **auth) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a["X-MBX-ORDER-COUNT-10S"] for a in answers] == ["1", "2", "3"]
    assert answers[0]["X-MBX-ORDER-COUNT-1D"] == "1"
    assert answers[-1].json() == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 2 orders per TEN_SECONDS.",
    }
    assert "X-MBX-ORDER-COUNT-10S" not in client.get("/api/v3/order", **auth), "only placements count"


def test_with_redis_gone_requests_are_served_uncounted(client, settings):
    binance_limits._redis.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    try:
        answer = client.get("/api/v3/ping")
    finally:
        binance_limits._redis.cache_clear()

    assert answer.status_code == 200
    assert "X-MBX-USED-WEIGHT-1M" not in answer


def test_windows_are_fixed_and_say_how_long_is_left():
    assert MINUTE.key("ip", "a", 120.0) == MINUTE.key("ip", "a", 179.9) != MINUTE.key("ip", "a", 180.0)
    assert MINUTE.retry_after(170.5) == 10
    assert TEN_SECONDS.retry_after(19.99) == 1


def test_exchange_info_reports_the_limits_enforced(settings):
    settings.BINANCE_REQUEST_WEIGHT_1M = 1234
    limits = binance_limits.rate_limits()

    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1234} in limits
    assert [row["limit"] for row in limits if row["rateLimitType"] == "ORDERS"] == [
        settings.BINANCE_ORDERS_10S,
        settings.BINANCE_ORDERS_1D,
    ]


# --- the SIGNED view contract ---------------------------------------------------------------------------------


def test_a_signed_view_serves_the_user_the_gateways_token_names_with_params_from_query_and_body(client):
    user = uuid.uuid4()
    answer = client.post(
        "/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=ab",
        "side=BUY&quantity=1",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {key_token(user, 'read', 'trade')}",
    )

    assert answer.status_code == 200, answer.json()
    assert answer.json() == {"user": str(user), "params": {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1"}}


@pytest.mark.parametrize(
    ("method", "permissions", "status", "code"),
    [("post", ["read"], 401, -2015), ("delete", ["read"], 401, -2015), ("get", ["read"], 200, None)],
)
def test_trade_methods_need_a_key_with_trade(client, method, permissions, status, code):
    answer = getattr(client, method)("/api/v3/order", HTTP_AUTHORIZATION=f"Bearer {key_token(None, *permissions)}")

    assert answer.status_code == status
    if code:
        assert answer.json()["code"] == code


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, -2014), ("login", -2014), ("Bearer garbage", -2015)],
)
def test_without_an_api_keys_token_it_is_binances_401(client, authorization, code):
    if authorization == "login":
        authorization = f"Bearer {mint_access_token(uuid.uuid4())}"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    answer = client.get("/api/v3/order", **headers)

    assert (answer.status_code, answer.json()["code"]) == (401, code)
    assert set(answer.json()) == {"code", "msg"}


def test_the_same_parameter_in_query_and_body_is_binances_duplicate(client):
    answer = client.post(
        "/api/v3/order?symbol=A",
        "symbol=B",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {key_token(None, 'read', 'trade')}",
    )

    assert (answer.status_code, answer.json()["code"]) == (400, -1101)
