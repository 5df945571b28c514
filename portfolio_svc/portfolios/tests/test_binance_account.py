"""Binance's SIGNED GET /api/v3/account: the default portfolio's balances as free/locked, for a request the gateway
checked by API key (a token with the key's claims); anything else is Binance's -2014/-2015."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.testing.auth import mint_access_token
from portfolios.models import Balance
from portfolios.tests.factories import portfolio_with, reserve

pytestmark = pytest.mark.django_db

URL = "/api/v3/account"


def as_key(api, user_id, *permissions, **claims):
    token = mint_access_token(
        user_id, api_key=str(uuid.uuid4()), api_key_permissions=list(permissions or ["read"]), **claims
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_the_account_is_the_default_portfolio_free_and_locked(api, user_id):
    portfolio_with(user_id, USDT="1000", BTC="0.5")
    portfolio_with(user_id, name="Side", USDT="7")  # not the default: not the Binance account
    reserve(user_id, "USDT", "250.5")

    answer = as_key(api, user_id, "read", "trade").get(URL, {"timestamp": 1, "signature": "checked-by-the-gateway"})

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["balances"] == [
        {"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"},
        {"asset": "USDT", "free": "749.50000000", "locked": "250.50000000"},
    ]
    assert body["canTrade"] is True and body["accountType"] == "SPOT" and body["permissions"] == ["SPOT"]
    assert body["commissionRates"]["taker"] == "0.00100000" and body["takerCommission"] == 10
    assert body["updateTime"] > 0
    assert body["uid"] == as_key(api, user_id).get(URL).json()["uid"], "the account id is stable"


def test_a_read_only_key_cannot_trade_and_zero_balances_can_be_omitted(api, user_id):
    portfolio = portfolio_with(user_id, USDT="5")
    Balance.objects.create(portfolio=portfolio, asset_id="ETH")  # held once, all of it gone since

    body = as_key(api, user_id, "read").get(URL, {"omitZeroBalances": "true"}).json()

    assert body["canTrade"] is False
    assert [row["asset"] for row in body["balances"]] == ["USDT"]
    everything = as_key(api, user_id, "read").get(URL).json()
    assert [row["asset"] for row in everything["balances"]] == ["ETH", "USDT"]


def test_another_users_balances_are_never_in_the_account(api, user_id):
    portfolio_with(uuid.uuid4(), USDT="999")

    body = as_key(api, user_id).get(URL).json()

    assert body["balances"] == []
    assert body["updateTime"] == 0


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, -2014),  # around the gateway: no token, the key was never checked
        ({"platform_token": True}, -2014),  # a login token is not an API key's
        ({"HTTP_AUTHORIZATION": "Bearer not.a.token"}, -2015),
    ],
)
def test_without_a_gateway_checked_token_it_is_binances_401(api, user_id, headers, code):
    portfolio_with(user_id, USDT="1")
    if headers.pop("platform_token", False):
        headers["HTTP_AUTHORIZATION"] = f"Bearer {mint_access_token(user_id)}"

    answer = api.get(URL, **headers)

    assert (answer.status_code, answer.json()) == (401, {"code": code, "msg": answer.json()["msg"]})


def test_an_expired_key_token_is_refused(api, user_id):
    token = mint_access_token(
        user_id, lifetime=timedelta(seconds=-120), api_key=str(uuid.uuid4()), api_key_permissions=["read"]
    )

    answer = api.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert (answer.status_code, answer.json()["code"]) == (401, -2015)


@pytest.mark.parametrize(
    ("query", "code"),
    [("omitZeroBalances=yes", -1130), ("omitZeroBalances=true&omitZeroBalances=false", -1101)],
)
def test_bad_parameters_are_binances_400(api, user_id, query, code):
    answer = as_key(api, user_id).get(f"{URL}?{query}")

    assert (answer.status_code, answer.json()["code"]) == (400, code)


def test_a_parameter_in_both_the_query_and_the_form_body_is_a_duplicate(api, user_id):
    answer = as_key(api, user_id).generic(
        "GET", f"{URL}?omitZeroBalances=true", "omitZeroBalances=true", content_type="application/x-www-form-urlencoded"
    )

    assert (answer.status_code, answer.json()["code"]) == (400, -1101)


def test_the_account_costs_one_query(api, user_id):
    portfolio_with(user_id, USDT="1", BTC="1", ETH="1")
    client = as_key(api, user_id)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200

    assert len(queries) == 1, [q["sql"] for q in queries]
