"""Concurrency decided by the database: one client order id makes one order; concurrent batches never deadlock."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from common.events import Envelope
from common.testing.auth import bearer
from orders.handlers import handle_balance_events
from orders.models import Order, Saga, SagaState
from orders.tests.conftest import published
from orders.tests.factories import place

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("symbols")]


def test_the_same_client_order_id_posted_concurrently_makes_one_order(user_id):
    body = {
        "symbol": "ETHUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.5",
        "price": "2000.00",
        "newClientOrderId": "double-click",
    }
    start = threading.Barrier(6)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        client = APIClient(headers=bearer(user_id))
        try:
            start.wait(timeout=10)
            response = client.post("/api/orders", body, format="json")
            answers.append((response.status_code, response.json()["orderId"]))
        finally:
            connection.close()  # each thread has its own connection; the test database must not keep it

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    order = Order.objects.get()
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 200, 201]
    assert {order_id for _, order_id in answers} == {str(order.id)}
    assert Saga.objects.count() == 1
    assert len(published("order.created")) == 1 and len(published("portfolio.reserve_funds")) == 1


def test_two_batches_of_the_same_replies_in_opposite_orders_lock_alike_and_apply_once():
    orders = [place() for _ in range(40)]
    replies = [
        Envelope.new(
            "balance.reserved",
            source="portfolio_svc",
            subject=str(o.user_id),
            data={
                "order_id": str(o.id),
                "saga_id": str(o.saga.id),
                "user_id": str(o.user_id),
                "portfolio_id": str(uuid.uuid4()),
                "asset": o.reserved_asset,
                "amount": format(o.reserved_amount, "f"),
            },
        )
        for o in orders
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def consume(batch: list[Envelope]) -> None:
        try:
            start.wait(timeout=10)
            with transaction.atomic():  # as the runner holds a batch
                handle_balance_events(batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=consume, args=(b,)) for b in (replies, replies[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []  # a deadlock would surface here as an error of one of them
    assert set(Saga.objects.values_list("state", flat=True)) == {SagaState.COMPLETED}
    assert sorted(d["order_id"] for d in published("order.accepted")) == sorted(str(o.id) for o in orders)
