"""What the order path costs in SQL statements: a POST, and a batch of saga replies whatever its size.

Counted as the database sees them, BEGIN and COMMIT included (these tests are transactional, like production).
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.events import Envelope
from orders import selectors
from orders.handlers import handle_balance_events
from orders.models import Order, OrderEvent, Saga, SagaState
from orders.tests.conftest import published
from orders.tests.factories import apply, place, trade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("symbols")]

LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000",
    "price": "30000.00",
}
MARKET_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}

# BEGIN, INSERT orders, INSERT sagas, INSERT outbox_messages (order.created and portfolio.reserve_funds),
# INSERT order_events (both), COMMIT.
POST_STATEMENTS = 6
# BEGIN, SELECT orders FOR UPDATE, SELECT sagas FOR UPDATE, UPDATE orders, UPDATE sagas, INSERT outbox_messages,
# INSERT order_events, SELECT pg_notify (the waiters of the accepted and rejected orders), COMMIT.
REPLY_BATCH_STATEMENTS = 9


def _post(api, body: dict) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("/api/orders", body, format="json")
    assert response.status_code in (200, 201), response.json()
    return len(ctx.captured_queries), response.json()


def test_a_limit_post_is_four_inserts_in_one_transaction_and_its_answer_is_what_was_stored(api):
    selectors.symbols_cache_clear()
    cold, _ = _post(api, LIMIT_BUY)
    warm, body = _post(api, LIMIT_BUY)

    assert cold == POST_STATEMENTS + 1  # the first order of a symbol in this process reads the symbol
    assert warm == POST_STATEMENTS
    # Built from the object just written, the answer is the one a read of the stored order gives.
    assert api.get(f"/api/orders/{body['orderId']}").json() == body
    assert body["status"] == "PENDING_NEW" and body["executedQty"] == "0.00000000" and body["fills"] == []


def test_a_market_post_adds_one_read_of_the_last_price(api):
    apply(trade(price="20000.00", qty="1"))
    _post(api, LIMIT_BUY)  # the symbol is cached from here on

    statements, body = _post(api, MARKET_BUY)
    by_quote, _ = _post(api, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"})

    assert statements == POST_STATEMENTS + 1  # SELECT last_trades: the price moves, so it is never cached
    assert by_quote == POST_STATEMENTS  # spending a quote amount needs no price
    assert api.get(f"/api/orders/{body['orderId']}").json() == body
    assert published("portfolio.reserve_funds", order_id=body["orderId"])[0]["amount"] == "210.00000000"


def test_a_client_order_id_costs_one_lookup_and_its_replay_answers_without_writing(api):
    _post(api, LIMIT_BUY)

    first, body = _post(api, {**LIMIT_BUY, "newClientOrderId": "bot-1"})
    again, replay = _post(api, {**LIMIT_BUY, "newClientOrderId": "bot-1"})

    assert first == POST_STATEMENTS + 1  # SELECT orders by (user, client order id): none yet
    assert again == 2  # the same SELECT finds it, and its fills are read; nothing is written
    assert replay == body
    assert Order.objects.filter(client_order_id="bot-1").count() == 1


def _replies(orders: list[Order]) -> list[Envelope]:
    """balance.reserved for even positions, balance.reservation_failed for odd ones."""
    envelopes = []
    for i, order in enumerate(orders):
        data = {
            "order_id": str(order.id),
            "saga_id": str(order.saga.id),
            "user_id": str(order.user_id),
            "asset": order.reserved_asset,
            "amount": format(order.reserved_amount, "f"),
        }
        if i % 2:
            type_, data = "balance.reservation_failed", {**data, "reason": "insufficient USDT"}
        else:
            type_, data = "balance.reserved", {**data, "portfolio_id": str(uuid.uuid4())}
        envelopes.append(Envelope.new(type_, source="portfolio_svc", subject=str(order.user_id), data=data))
    return envelopes


def _handle(envelopes: list[Envelope]) -> int:
    """The batch handler in one transaction, as the runner calls it; returns the statements it took."""
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        handle_balance_events(envelopes)
    return len(ctx.captured_queries)


def test_a_batch_of_one_reply_and_of_a_hundred_mixed_replies_cost_the_same_statements():
    one = [place()]
    hundred = [place() for _ in range(100)]

    assert _handle(_replies(one)) == REPLY_BATCH_STATEMENTS
    assert _handle(_replies(hundred)) == REPLY_BATCH_STATEMENTS

    states = dict(Saga.objects.filter(order__in=hundred).values_list("order_id", "state"))
    assert [states[o.id] for o in hundred] == [SagaState.COMPLETED, SagaState.FAILED] * 50
    statuses = dict(Order.objects.filter(id__in=[o.id for o in hundred]).values_list("id", "status"))
    assert [statuses[o.id] for o in hundred] == ["NEW", "REJECTED"] * 50
    assert len(published("order.accepted")) == 51 and len(published("order.rejected")) == 50
    assert OrderEvent.objects.filter(type__in=["order.accepted", "order.rejected"]).count() == 101
