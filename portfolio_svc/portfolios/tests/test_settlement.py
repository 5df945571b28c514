"""Settlement of fills: Decimal arithmetic for BUY and SELL, partial fills, fees, leftover release, idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolios.models import Balance, LedgerEntry, Reservation, Settlement
from portfolios.services import InsufficientFunds, SettlementError, reservation_release_for_order
from portfolios.tests.conftest import published
from portfolios.tests.factories import fill, portfolio_with, reserve

pytestmark = pytest.mark.django_db


def _holdings(portfolio) -> dict[str, tuple[Decimal, Decimal]]:
    return {b.asset_id: (b.available, b.locked) for b in Balance.objects.filter(portfolio=portfolio)}


def test_limit_buy_filled_in_two_parts_at_its_price_uses_exactly_the_reservation(user_id):
    portfolio = portfolio_with(user_id, USDT="20000")
    reservation = reserve(user_id, "USDT", "15000", order_id="buy-1")  # 0.5 BTC x 30000

    fill(reservation, side="BUY", qty="0.2", price="30000", fee="0.0002", status="PARTIALLY_FILLED", fill_id="f-1")
    assert _holdings(portfolio) == {"USDT": (Decimal(5000), Decimal(9000)), "BTC": (Decimal("0.1998"), Decimal(0))}
    fill(reservation, side="BUY", qty="0.3", price="30000", fee="0.0003", status="FILLED", fill_id="f-2")

    assert _holdings(portfolio) == {"USDT": (Decimal(5000), Decimal(0)), "BTC": (Decimal("0.4995"), Decimal(0))}
    reservation.refresh_from_db()
    assert (reservation.consumed, reservation.released, reservation.state) == (Decimal(15000), 0, "CONSUMED")
    assert published("balance.settled", fill_id="f-2") == [
        {
            "fill_id": "f-2",
            "order_id": "buy-1",
            "user_id": str(user_id),
            "portfolio_id": str(portfolio.id),
            "debit_asset": "USDT",
            "debit_amount": "9000.00000000",
            "credit_asset": "BTC",
            "credit_amount": "0.30000000",
            "fee_asset": "BTC",
            "fee": "0.00030000",
            "released_amount": "0.00000000",
        }
    ]
    assert [e["amount"] for e in published("balance.released", order_id="buy-1")] == ["0.00000000"]


def test_limit_buy_filled_at_a_better_price_releases_the_leftover_when_filled(user_id):
    portfolio = portfolio_with(user_id, USDT="20000")
    reservation = reserve(user_id, "USDT", "15000", order_id="buy-2")

    fill(reservation, side="BUY", qty="0.5", price="29000.5", fee="0.0005", status="FILLED", fill_id="f-3")

    assert _holdings(portfolio) == {"USDT": (Decimal("5499.75"), Decimal(0)), "BTC": (Decimal("0.4995"), Decimal(0))}
    reservation.refresh_from_db()
    assert (reservation.consumed, reservation.released, reservation.state) == (
        Decimal("14500.25"),
        Decimal("499.75"),
        "RELEASED",
    )
    assert published("balance.settled")[0]["released_amount"] == "499.75000000"
    assert published("balance.released") == [
        {"order_id": "buy-2", "saga_id": "s-buy-2", "user_id": str(user_id), "asset": "USDT", "amount": "499.75000000"}
    ]


def test_sell_partially_filled_then_cancelled_credits_quote_minus_fee_and_releases_the_rest(user_id):
    portfolio = portfolio_with(user_id, USDT="0.01", BTC="1")
    reservation = reserve(user_id, "BTC", "0.4", order_id="sell-1")

    fill(reservation, side="SELL", qty="0.25", price="31000.1", fee="7.750025", status="PARTIALLY_FILLED")
    assert _holdings(portfolio) == {
        "BTC": (Decimal("0.6"), Decimal("0.15")),
        "USDT": (Decimal("7742.284975"), Decimal(0)),  # 0.01 + 7750.025 - 7.750025
    }
    reservation_release_for_order(order_id="sell-1")

    assert _holdings(portfolio)["BTC"] == (Decimal("0.75"), Decimal(0))
    settled = published("balance.settled")[0]
    assert (settled["debit_asset"], settled["debit_amount"]) == ("BTC", "0.25000000")
    assert (settled["credit_asset"], settled["credit_amount"], settled["fee_asset"], settled["fee"]) == (
        "USDT",
        "7750.02500000",
        "USDT",
        "7.75002500",
    )
    assert [e["amount"] for e in published("balance.released")] == ["0.15000000"]


def test_the_same_fill_delivered_twice_settles_once(user_id):
    portfolio = portfolio_with(user_id, USDT="1000")
    reservation = reserve(user_id, "USDT", "600", order_id="buy-3")

    first, created = fill(
        reservation, side="BUY", qty="0.01", price="30000", fee="0.00001", status="FILLED", fill_id="f-9"
    )
    again, created_again = fill(
        reservation, side="BUY", qty="0.01", price="30000", fee="0.00001", status="FILLED", fill_id="f-9"
    )

    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert _holdings(portfolio) == {"USDT": (Decimal(700), Decimal(0)), "BTC": (Decimal("0.00999"), Decimal(0))}
    assert Settlement.objects.count() == 1
    assert len(published("balance.settled")) == 1 and len(published("balance.released")) == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.FILL_CREDIT).count() == 1


def test_a_market_buy_whose_buffer_falls_short_pays_the_rest_from_available(user_id):
    portfolio = portfolio_with(user_id, USDT="1000")
    reservation = reserve(user_id, "USDT", "100", order_id="buy-4")

    settlement, _ = fill(reservation, side="BUY", qty="0.001", price="101000", fee="0", status="FILLED")

    assert settlement.debit_from_available == Decimal(1)
    assert _holdings(portfolio) == {"USDT": (Decimal(899), Decimal(0)), "BTC": (Decimal("0.001"), Decimal(0))}
    reservation.refresh_from_db()
    assert (reservation.consumed, reservation.released, reservation.state) == (Decimal(100), 0, "CONSUMED")


def test_a_fill_costing_more_than_reservation_and_available_changes_nothing(user_id):
    portfolio = portfolio_with(user_id, USDT="100")
    reservation = reserve(user_id, "USDT", "100", order_id="buy-5")

    with pytest.raises(InsufficientFunds):
        fill(reservation, side="BUY", qty="0.001", price="101000", fee="0", status="FILLED")

    assert _holdings(portfolio) == {"USDT": (Decimal(0), Decimal(100))}
    assert not Settlement.objects.exists() and published("balance.settled") == []
    reservation.refresh_from_db()
    assert (reservation.consumed, reservation.state) == (0, "ACTIVE")


def test_a_fill_of_an_order_without_reservation_or_in_the_wrong_asset_is_refused(user_id):
    portfolio_with(user_id, USDT="100", BTC="1")
    sell = reserve(user_id, "BTC", "0.5", order_id="sell-2")
    ghost = Reservation(order_id="ghost", user_id=user_id)

    with pytest.raises(SettlementError, match="no reservation"):
        fill(ghost, side="BUY", qty="0.001", price="100", fee="0", status="FILLED")
    with pytest.raises(SettlementError, match="pays in USDT"):
        fill(sell, side="BUY", qty="0.001", price="100", fee="0", status="FILLED")

    assert not Settlement.objects.exists() and published("balance.settled") == []
