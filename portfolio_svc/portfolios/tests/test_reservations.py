"""Reservations: funds move available -> locked for an order, failures answer with a reason, releases are idempotent."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from portfolios.models import Balance, LedgerEntry, Reservation
from portfolios.services import FailureReason, reservation_release, reservation_release_for_order
from portfolios.tests.conftest import published
from portfolios.tests.factories import portfolio_with, reserve

pytestmark = pytest.mark.django_db


def _balance(portfolio, asset: str) -> Balance:
    return Balance.objects.get(portfolio=portfolio, asset_id=asset)


def test_reserve_moves_available_to_locked_and_answers_reserved(user_id):
    portfolio = portfolio_with(user_id, USDT="1000")

    reservation = reserve(user_id, "USDT", "250.5", order_id="o-1")

    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal("749.5"), Decimal("250.5"))
    assert reservation.state == Reservation.State.ACTIVE and reservation.portfolio_id == portfolio.id
    assert published("balance.reserved") == [
        {
            "order_id": "o-1",
            "saga_id": "s-o-1",
            "user_id": str(user_id),
            "portfolio_id": str(portfolio.id),
            "asset": "USDT",
            "amount": "250.50000000",
        }
    ]
    assert published("balance.reservation_failed") == []


@pytest.mark.parametrize(
    ("asset", "amount", "reason"),
    [("USDT", "1000.01", "insufficient_funds"), ("BTC", "0.1", "insufficient_funds"), ("DOGE", "1", "unknown_asset")],
)
def test_a_reservation_that_cannot_be_made_answers_its_reason_and_locks_nothing(user_id, asset, amount, reason):
    portfolio = portfolio_with(user_id, USDT="1000")

    reservation = reserve(user_id, asset, amount, order_id="o-2")

    assert reservation.state == Reservation.State.FAILED and reservation.reason == reason
    assert published("balance.reservation_failed") == [
        {
            "order_id": "o-2",
            "saga_id": "s-o-2",
            "user_id": str(user_id),
            "asset": asset,
            "amount": amount,
            "reason": reason,
        }
    ]
    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(1000), Decimal(0))
    assert not Balance.objects.filter(portfolio=portfolio).exclude(asset_id="USDT").exists()
    assert published("balance.reserved") == []
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RESERVE).exists()


def test_a_user_without_a_portfolio_gets_unknown_portfolio():
    stranger = uuid.uuid4()

    reservation = reserve(stranger, "USDT", "1", order_id="o-3")

    assert reservation.reason == FailureReason.UNKNOWN_PORTFOLIO
    assert [e["reason"] for e in published("balance.reservation_failed")] == ["unknown_portfolio"]


def test_the_same_reserve_command_twice_locks_once_and_answers_the_same(user_id):
    portfolio = portfolio_with(user_id, USDT="100")

    reserve(user_id, "USDT", "60", order_id="o-4")
    reserve(user_id, "USDT", "60", order_id="o-4")

    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(40), Decimal(60))
    assert [e["amount"] for e in published("balance.reserved")] == ["60.00000000", "60.00000000"]
    assert Reservation.objects.filter(order_id="o-4").count() == 1


def test_release_returns_what_is_left_and_a_second_release_changes_nothing(user_id):
    portfolio = portfolio_with(user_id, USDT="100")
    reserve(user_id, "USDT", "60", order_id="o-5")

    first = reservation_release(order_id="o-5", saga_id="s-o-5", user_id=user_id)
    second = reservation_release(order_id="o-5", saga_id="s-o-5", user_id=user_id)

    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(100), Decimal(0))
    assert first.state == second.state == Reservation.State.RELEASED and second.released == Decimal(60)
    assert published("balance.released") == [
        {"order_id": "o-5", "saga_id": "s-o-5", "user_id": str(user_id), "asset": "USDT", "amount": "60.00000000"},
        {"order_id": "o-5", "saga_id": "s-o-5", "user_id": str(user_id), "asset": "USDT", "amount": "0.00000000"},
    ]
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RELEASE).count() == 1


def test_releasing_an_unknown_order_answers_success_and_a_late_reserve_locks_nothing(user_id):
    portfolio = portfolio_with(user_id, USDT="100")

    reservation_release(order_id="o-6", saga_id="s-o-6", user_id=user_id, reason="saga timed out")
    late = reserve(user_id, "USDT", "10", order_id="o-6")

    assert published("balance.released") == [
        {"order_id": "o-6", "saga_id": "s-o-6", "user_id": str(user_id), "asset": "NONE", "amount": "0.00000000"}
    ]
    assert late.state == Reservation.State.RELEASED and late.amount == 0
    assert [e["reason"] for e in published("balance.reservation_failed")] == ["already_released"]
    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(100), Decimal(0))


def test_order_cancelled_releases_the_rest_once_and_ignores_unknown_orders(user_id):
    portfolio = portfolio_with(user_id, USDT="100")
    reserve(user_id, "USDT", "30", order_id="o-7")

    reservation_release_for_order(order_id="o-7")
    reservation_release_for_order(order_id="o-7")
    assert reservation_release_for_order(order_id="o-unknown") is None

    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(100), Decimal(0))
    assert [e["amount"] for e in published("balance.released")] == ["30.00000000"]
    assert not Reservation.objects.filter(order_id="o-unknown").exists()


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_reservations_against_funds_for_ten_reserve_exactly_ten(user_id):
    portfolio = portfolio_with(user_id, USDT="100")
    start = threading.Barrier(50)
    errors: list[BaseException] = []

    def reserve_ten(i: int) -> None:
        try:
            start.wait(timeout=30)
            reserve(user_id, "USDT", "10", order_id=f"race-{i}")
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=reserve_ten, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    states = list(Reservation.objects.values_list("state", flat=True))
    assert states.count(Reservation.State.ACTIVE) == 10 and states.count(Reservation.State.FAILED) == 40
    assert len(published("balance.reserved")) == 10
    assert {e["reason"] for e in published("balance.reservation_failed")} == {"insufficient_funds"}
    assert len(published("balance.reservation_failed")) == 40
    balance = _balance(portfolio, "USDT")
    assert (balance.available, balance.locked) == (Decimal(0), Decimal(100))
    # Never negative on the way: the ledger's running available never dips below zero.
    running = Decimal(0)
    for delta in LedgerEntry.objects.filter(portfolio=portfolio, asset_id="USDT").values_list(
        "available_delta", flat=True
    ):
        running += delta
        assert running >= 0
