"""The admin: operators credit paper funds through the domain module; amounts are read-only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from portfolios.models import Balance, LedgerEntry
from portfolios.tests.conftest import published
from portfolios.tests.factories import portfolio_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-for-tests-only")
    client.force_login(operator)
    return client


def test_the_credit_action_asks_then_credits_through_the_domain_module(operator_client, user_id):
    portfolio = portfolio_with(user_id, USDT="10")
    url = "/admin/portfolios/portfolio/"
    selection = {"action": "credit_paper_funds", "_selected_action": [str(portfolio.id)]}

    form = operator_client.post(url, selection)
    done = operator_client.post(url, {**selection, "apply": "1", "asset": "BTC", "amount": "0.25", "reason": "promo"})

    assert form.status_code == 200 and b"Credit paper funds" in form.content
    assert done.status_code == 302
    assert Balance.objects.get(portfolio=portfolio, asset_id="BTC").available == Decimal("0.25")
    assert published("balance.credited", asset="BTC") == [
        {
            "user_id": str(user_id),
            "portfolio_id": str(portfolio.id),
            "asset": "BTC",
            "amount": "0.25000000",
            "reason": "promo",
        }
    ]
    assert LedgerEntry.objects.filter(kind="CREDIT", asset_id="BTC", reference="promo").count() == 1


def test_an_invalid_credit_shows_the_form_again_and_changes_nothing(operator_client, user_id):
    portfolio = portfolio_with(user_id, USDT="10")
    selection = {"action": "credit_paper_funds", "_selected_action": [str(portfolio.id)], "apply": "1"}

    response = operator_client.post("/admin/portfolios/portfolio/", {**selection, "asset": "BTC", "amount": "-1"})

    assert response.status_code == 200
    assert not Balance.objects.filter(portfolio=portfolio, asset_id="BTC").exists()
    assert published("balance.credited", asset="BTC") == []


def test_balances_reservations_and_ledger_are_read_only(operator_client, user_id):
    portfolio = portfolio_with(user_id, USDT="10")
    balance = Balance.objects.get(portfolio=portfolio)

    pages = [
        "/admin/portfolios/balance/",
        f"/admin/portfolios/balance/{balance.pk}/change/",
        "/admin/portfolios/reservation/",
        "/admin/portfolios/ledgerentry/",
        f"/admin/portfolios/portfolio/{portfolio.pk}/change/",
    ]
    assert [operator_client.get(p).status_code for p in pages] == [200] * len(pages)
    operator_client.post(f"/admin/portfolios/balance/{balance.pk}/change/", {"available": "999999", "locked": "0"})
    balance.refresh_from_db()
    assert balance.available == Decimal(10)
    assert operator_client.get("/admin/portfolios/balance/add/").status_code == 403
