"""The API: a user's portfolios, balances and valuation; nobody else's, and nothing without a token."""

from __future__ import annotations

import uuid

import pytest

from portfolios.models import Portfolio
from portfolios.services import prices_apply_trades
from portfolios.tests.conftest import published
from portfolios.tests.factories import portfolio_with, reserve

pytestmark = pytest.mark.django_db


def _prices(**symbols: str) -> None:
    prices_apply_trades(trades=[{"s": s, "t": 1, "p": p, "T": 1_700_000_000_000} for s, p in symbols.items()])


def test_list_shows_the_users_portfolios_with_balances(api, user_id):
    portfolio = portfolio_with(user_id, USDT="1000", BTC="0.5")
    reserve(user_id, "USDT", "250")
    portfolio_with(uuid.uuid4(), USDT="5")  # someone else's

    response = api.as_user(user_id).get("/api/portfolios/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": str(portfolio.id),
            "name": "Default",
            "is_default": True,
            "created_at": portfolio.created_at.isoformat().replace("+00:00", "Z"),
            "balances": [
                {"asset": "BTC", "available": "0.50000000", "locked": "0.00000000", "total": "0.50000000"},
                {"asset": "USDT", "available": "750.00000000", "locked": "250.00000000", "total": "1000.00000000"},
            ],
        }
    ]


def test_detail_values_every_asset_in_usdt_at_last_prices_and_names_missing_ones(api, user_id):
    portfolio = portfolio_with(user_id, USDT="1000", BTC="0.5", XRP="100", BNB="2")
    reserve(user_id, "BTC", "0.1")  # locked still counts
    _prices(BTCUSDT="30000.10", ETHUSDT="2000", XRPETH="0.00025")

    response = api.as_user(user_id).get(f"/api/portfolios/{portfolio.id}/")

    assert response.status_code == 200
    assert response.json()["valuation"] == {
        "quote_asset": "USDT",
        "total": "16050.05000000",
        "assets": [
            {"asset": "BNB", "quantity": "2.00000000", "price": None, "value": None},
            {"asset": "BTC", "quantity": "0.50000000", "price": "30000.10000000", "value": "15000.05000000"},
            {"asset": "USDT", "quantity": "1000.00000000", "price": "1.00000000", "value": "1000.00000000"},
            {"asset": "XRP", "quantity": "100.00000000", "price": "0.50000000", "value": "50.00000000"},
        ],
        "missing_prices": ["BNB"],
    }


def test_another_users_portfolio_is_not_found_like_a_missing_one(api, user_id):
    theirs = portfolio_with(uuid.uuid4(), USDT="100")
    portfolio_with(user_id, USDT="100")

    other = api.as_user(user_id).get(f"/api/portfolios/{theirs.id}/")
    missing = api.as_user(user_id).get(f"/api/portfolios/{uuid.uuid4()}/")
    balances = api.as_user(user_id).get(f"/api/balances/?portfolio={theirs.id}")

    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json() == {"code": "not_found", "message": "portfolio not found", "details": {}}
    assert balances.status_code == 200 and balances.json() == []


@pytest.mark.parametrize("path", ["/api/portfolios/", f"/api/portfolios/{uuid.uuid4()}/", "/api/balances/"])
def test_requests_without_a_valid_token_are_401(api, path):
    anonymous = api.get(path)
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    forged = api.get(path)

    assert anonymous.status_code == forged.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"


def test_balances_lists_every_portfolio_of_the_user_and_filters(api, user_id):
    main = portfolio_with(user_id, USDT="10", BTC="1")
    side = portfolio_with(user_id, name="Side", ETH="2")

    everything = api.as_user(user_id).get("/api/balances/").json()
    btc = api.as_user(user_id).get("/api/balances/?asset=btc").json()
    bad = api.as_user(user_id).get("/api/balances/?portfolio=nope")

    assert [(b["portfolio_id"], b["asset"], b["total"]) for b in everything] == [
        (str(main.id), "BTC", "1.00000000"),
        (str(main.id), "USDT", "10.00000000"),
        (str(side.id), "ETH", "2.00000000"),
    ]
    assert [(b["portfolio_id"], b["available"]) for b in btc] == [(str(main.id), "1.00000000")]
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_a_user_opens_another_portfolio_once_per_name(api, user_id):
    portfolio_with(user_id, USDT="10")

    created = api.as_user(user_id).post("/api/portfolios/", {"name": "Long term"}, format="json")
    duplicate = api.as_user(user_id).post("/api/portfolios/", {"name": "Long term"}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["is_default"], body["balances"]) == ("Long term", False, [])
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "portfolio_exists"
    assert Portfolio.objects.filter(user_id=user_id).count() == 2
    assert [e["name"] for e in published("portfolio.created", user_id=str(user_id))] == ["Default", "Long term"]
