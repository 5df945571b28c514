"""Cancel rules: open orders end CANCELED with order.cancelled; finished ones refuse with 400 and stay as they are."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from common.outbox.models import OutboxMessage
from orders.models import Order, Saga, SagaState
from orders.services import order_cancel, saga_reservation_confirm
from orders.tests.conftest import published
from orders.tests.factories import apply, open_order, place, trade

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("symbols")]


def test_cancel_of_an_open_order_ends_it_and_tells_portfolio_to_release_through_order_cancelled(api, user_id):
    order = open_order(user_id)

    response = api.delete(f"/api/orders/{order.id}")

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.reason == "canceled by user"
    assert published("order.cancelled") == [
        {
            "order_id": str(order.id),
            "user_id": str(user_id),
            "symbol": "BTCUSDT",
            "status": "CANCELED",
            "reason": "canceled by user",
        }
    ]
    # order.cancelled follows the order's fills on order-events; a release command could overtake them
    assert published("portfolio.release_funds") == []


def test_cancel_of_a_partially_filled_order_keeps_its_fills(api, user_id):
    order = open_order(user_id, quantity=Decimal("0.02"))
    apply(trade(price="30000.00", qty="0.01"))

    response = api.delete(f"/api/orders/{order.id}")

    assert response.json()["status"] == "CANCELED" and response.json()["executedQty"] == "0.01000000"
    assert len(response.json()["fills"]) == 1


def test_cancel_while_reserving_compensates_the_saga_and_a_late_reservation_is_released_too(api, user_id):
    order = place(user_id)

    assert api.delete(f"/api/orders/{order.id}").status_code == 200

    saga = Saga.objects.get(order=order)
    assert saga.state == SagaState.COMPENSATED
    assert [r["reason"] for r in published("portfolio.release_funds")] == ["canceled"]
    outcome = saga_reservation_confirm(
        saga_id=str(saga.id), order_id=str(order.id), asset="USDT", amount=Decimal("300")
    )
    assert outcome == "released"
    assert Order.objects.get(id=order.id).status == "CANCELED"
    assert [r["reason"] for r in published("portfolio.release_funds")] == ["canceled", "late reservation"]


@pytest.mark.parametrize("final", ["FILLED", "CANCELED", "REJECTED", "EXPIRED"])
def test_cancel_of_a_finished_order_is_a_400_and_nothing_changes(api, user_id, final):
    order = open_order(user_id, quantity=Decimal("0.01"))
    if final == "FILLED":
        apply(trade(price="30000.00", qty="1"))
    else:
        Order.objects.filter(id=order.id).update(status=final)
    before = OutboxMessage.objects.count()

    response = api.delete(f"/api/orders/{order.id}")

    assert response.status_code == 400
    assert response.json() == {
        "code": "-2011",
        "message": f"Order is {final}: only an open order can be canceled.",
        "details": {"status": final},
    }
    assert Order.objects.get(id=order.id).status == final
    assert OutboxMessage.objects.count() == before


def test_the_admin_cancel_action_runs_the_cancel_and_reports_refusals(client):
    admin = User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    client.force_login(admin)
    open_one = open_order(price=Decimal("28000.00"))
    filled = open_order(quantity=Decimal("0.01"), price=Decimal("29000.00"))
    apply(trade(price="29000.00", qty="1"))  # crosses the 29000 bid only

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_orders", "_selected_action": [str(open_one.id), str(filled.id)]},
        follow=True,
    )

    assert response.status_code == 200
    assert Order.objects.get(id=open_one.id).status == "CANCELED"
    assert Order.objects.get(id=open_one.id).reason == "canceled by an operator"
    assert Order.objects.get(id=filled.id).status == "FILLED"
    assert "only an open order can be canceled" in response.content.decode()


def test_the_admin_pages_of_orders_events_and_sagas_render(client):
    client.force_login(User.objects.create_superuser("ops2", "ops2@example.com", "pw-for-tests-only"))
    order = open_order()

    for url in (
        "/admin/orders/order/",
        f"/admin/orders/order/{order.id}/change/",
        "/admin/orders/orderevent/",
        "/admin/orders/saga/",
        f"/admin/orders/saga/{order.saga.id}/change/",
        "/admin/orders/symbol/",
        "/admin/orders/fill/",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_a_cancel_holding_one_of_its_orders_and_fills_the_next_one():
    first = open_order(quantity=Decimal("0.01"))
    second = open_order(quantity=Decimal("0.01"))
    locked, release, filled = threading.Event(), threading.Event(), {}

    def cancel() -> None:
        try:
            with transaction.atomic():
                order_cancel(order_id=first.id)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def fill() -> None:
        try:
            filled["fills"] = apply(trade(price="29000.00", qty="0.01"))
        finally:
            connection.close()

    canceller, engine = threading.Thread(target=cancel), threading.Thread(target=fill)
    canceller.start()
    assert locked.wait(10)
    engine.start()
    _wait_for_a_lock_wait()
    release.set()
    canceller.join(10)
    engine.join(10)

    assert filled == {"fills": 1}
    assert Order.objects.get(id=first.id).status == "CANCELED" and not first.fills.exists()
    assert Order.objects.get(id=second.id).status == "FILLED"


def _wait_for_a_lock_wait(timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("the fill engine never waited for the cancel's lock")
