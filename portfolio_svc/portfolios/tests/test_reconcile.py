"""`manage.py reconcile`: balances against the ledger and open reservations, per user and asset."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from portfolios.models import Balance, Reservation
from portfolios.services import reservation_release_for_order
from portfolios.tests.factories import fill, portfolio_with, reserve

pytestmark = pytest.mark.django_db


def _reconcile(*args: str) -> str:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def _trade_a_little(user_id) -> None:
    portfolio_with(user_id, USDT="20000", BTC="1")
    buy = reserve(user_id, "USDT", "15000")
    fill(buy, side="BUY", qty="0.2", price="30000", fee="0.0002", status="PARTIALLY_FILLED")
    fill(buy, side="BUY", qty="0.1", price="29999.99", fee="0.0001", status="FILLED")
    sell = reserve(user_id, "BTC", "0.5")
    fill(sell, side="SELL", qty="0.25", price="31000.1", fee="7.750025", status="PARTIALLY_FILLED")
    reservation_release_for_order(order_id=sell.order_id)
    reserve(user_id, "USDT", "100")  # still open


def test_balances_made_by_the_services_reconcile(user_id):
    _trade_a_little(user_id)

    output = _reconcile()

    assert "2 user/asset pairs checked, 0 with differences" in output
    usdt = next(line for line in output.splitlines() if f"{user_id}  USDT" in line)
    # 20000 - 6000 - 2999.999 + 7750.025 - 7.750025
    assert usdt.split()[2:] == ["18642.27597500", "100.00000000", "18742.27597500", "ok"]


def test_a_balance_changed_behind_the_domain_modules_back_fails_reconciliation(user_id):
    _trade_a_little(user_id)
    Balance.objects.filter(asset_id="BTC").update(available=Decimal("5"))

    with pytest.raises(CommandError) as failure:
        _reconcile("--differences-only")

    assert failure.value.returncode == 1
    assert str(failure.value) == "1 user/asset pair(s) do not reconcile"


def test_locked_funds_without_an_open_reservation_fail_reconciliation(user_id):
    _trade_a_little(user_id)
    Reservation.objects.filter(state="ACTIVE").update(state="FAILED", consumed=0, released=0)

    with pytest.raises(CommandError):
        _reconcile()
