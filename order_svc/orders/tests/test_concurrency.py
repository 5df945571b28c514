"""Concurrent placements with one client order id make one order: the unique constraint decides, not a check."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from common.testing.auth import bearer
from orders.models import Order, Saga
from orders.tests.conftest import published

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
