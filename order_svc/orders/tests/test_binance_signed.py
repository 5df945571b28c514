"""Binance's SIGNED trading endpoints of order_svc: placing (and waiting for the saga's outcome), testing, reading and
cancelling orders, the open orders, all orders and the account's trades, with Binance's shapes and codes.

Requests carry the access token the gateway forwards after user_svc checked the key and signature (the key's id and
its permissions in the claims). The waits are tested for real: transactional tests whose saga replies and trades
are committed by another thread, on its own connection, while the request waits for the notification.
"""

from __future__ import annotations

import select
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from common.testing.auth import bearer, mint_access_token
from orders import notifications, selectors
from orders.models import Fill, Order, OrderStatus, Saga, SagaState, Symbol
from orders.services import saga_reservation_confirm, saga_reservation_fail
from orders.tests.conftest import published
from orders.tests.factories import accept, apply, open_order, place, trade

LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000",
    "price": "30000.00",
}
ORDER_KEYS = [
    "symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty", "cummulativeQuoteQty",
    "status", "timeInForce", "type", "side", "stopPrice", "icebergQty", "time", "updateTime", "isWorking",
    "workingTime", "origQuoteOrderQty", "selfTradePreventionMode",
]  # fmt: skip
RESULT_KEYS = [
    "symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty", "executedQty",
    "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "workingTime",
    "selfTradePreventionMode",
]  # fmt: skip
ACK_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
INSUFFICIENT = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}


def key_client(user_id: uuid.UUID, permissions: tuple[str, ...] = ("read", "trade")) -> APIClient:
    """A client whose requests come through the gateway's API key check: a token naming the key and its rights."""
    client = APIClient()
    token = mint_access_token(user_id, api_key=str(uuid.uuid4()), api_key_permissions=list(permissions))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def trader(user_id) -> APIClient:
    return key_client(user_id)


@pytest.fixture
def reader(user_id) -> APIClient:
    return key_client(user_id, ("read",))


@pytest.fixture(autouse=True)
def _listener_stopped():
    """Each test starts its listener afresh (its connection never outlives the test's database)."""
    yield
    notifications.listener().stop()


@pytest.fixture
def no_wait(settings):
    """Tests that check parameters, not outcomes: nothing replies in them, so nothing is worth waiting for."""
    settings.ORDER_BINANCE_WAIT_S = 0


def send(client: APIClient, method: str, path: str, *, query: dict | None = None, **body: str):
    """Binance's way: GET with a query string; POST and DELETE with a form body (and a query string, if given)."""
    url = f"/api/v3/{path}" + (f"?{urlencode(query)}" if query else "")
    if method == "GET":
        return client.get(f"/api/v3/{path}?{urlencode({**(query or {}), **body})}")
    form = urlencode(body)
    return getattr(client, method.lower())(url, form, content_type="application/x-www-form-urlencoded")


def refusal(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return response.json()


class Replier(threading.Thread):
    """What the other services do while a request waits: once the request waits for its order (the listener has
    its waiter), answer the saga (and maybe trade), committed on this thread's own connection."""

    def __init__(self, user_id: uuid.UUID, *, reserve: bool = True, then: Callable[[], None] | None = None):
        super().__init__(daemon=True)
        self.user_id, self.reserve, self.then = user_id, reserve, then
        self.errors: list[BaseException] = []
        self.replied_during_wait = False
        self.start()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 5
            order = None
            while time.monotonic() < deadline:
                order = Order.objects.filter(user_id=self.user_id, status=OrderStatus.PENDING_NEW).first()
                if order is not None and notifications.listener().waiting_for(order.id):
                    break
                time.sleep(0.005)  # the test's stand-in for the consumer; the request itself never polls
            else:
                return
            self.replied_during_wait = True
            saga = Saga.objects.get(order=order)
            if self.reserve:
                saga_reservation_confirm(
                    saga_id=str(saga.id),
                    order_id=str(order.id),
                    asset=order.reserved_asset,
                    amount=order.reserved_amount,
                )
            else:
                saga_reservation_fail(saga_id=str(saga.id), order_id=str(order.id), reason="insufficient_funds")
            if self.then is not None:
                self.then()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which fails with it
            self.errors.append(exc)
        finally:
            connection.close()

    def finish(self) -> None:
        self.join(10)
        assert not self.errors, self.errors
        assert self.replied_during_wait


# --- POST /api/v3/order: the wait for the saga's outcome ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_limit_order_is_answered_new_when_its_funds_are_reserved_during_the_wait(trader, user_id):
    replier = Replier(user_id)
    started = time.monotonic()

    response = send(trader, "POST", "order", **LIMIT_BUY, newClientOrderId="bot-1")

    elapsed = time.monotonic() - started
    replier.finish()
    assert response.status_code == 200, response.json()
    body = response.json()
    order = Order.objects.get(client_order_id="bot-1")
    assert list(body) == [*RESULT_KEYS, "fills"]
    assert body == {
        "symbol": "BTCUSDT",
        "orderId": order.number,
        "orderListId": -1,
        "clientOrderId": "bot-1",
        "transactTime": int(order.created_at.timestamp() * 1000),
        "price": "30000.00000000",
        "origQty": "0.01000000",
        "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "workingTime": int(order.accepted_at.timestamp() * 1000),
        "selfTradePreventionMode": "NONE",
        "fills": [],
    }
    assert order.status == OrderStatus.NEW
    assert elapsed < 1.5  # woken by the notification, well before the 2 s bound


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_an_order_refused_for_funds_during_the_wait_is_binances_insufficient_balance(trader, user_id):
    replier = Replier(user_id, reserve=False)

    response = send(trader, "POST", "order", **LIMIT_BUY)

    replier.finish()
    assert response.status_code == 400
    assert refusal(response) == INSUFFICIENT
    assert Order.objects.get(user_id=user_id).status == OrderStatus.REJECTED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_with_no_reply_the_answer_comes_at_the_bound_with_the_ack_fields_and_pending_new(trader, user_id, settings):
    settings.ORDER_BINANCE_WAIT_S = 0.4
    started = time.monotonic()

    response = send(trader, "POST", "order", **LIMIT_BUY)

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    order = Order.objects.get(user_id=user_id)
    assert response.json() == {
        "symbol": "BTCUSDT",
        "orderId": order.number,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": int(order.created_at.timestamp() * 1000),
        "status": "PENDING_NEW",
    }
    assert 0.4 <= elapsed < 1.5
    assert order.status == OrderStatus.PENDING_NEW  # the saga goes on; the client reads the order later


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_market_order_waits_for_its_fill_and_full_lists_it(trader, user_id):
    apply(trade(price="20000.00", qty="1"))  # a last price, so a MARKET BUY by quantity can be reserved
    replier = Replier(user_id, then=lambda: apply(trade(price="20010.00", qty="1")))

    response = send(trader, "POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")

    replier.finish()
    assert response.status_code == 200, response.json()
    body = response.json()
    fill = Fill.objects.get(order__user_id=user_id)
    assert body["status"] == "FILLED"
    assert body["executedQty"] == "0.01000000" and body["cummulativeQuoteQty"] == "200.10000000"
    assert body["origQty"] == "0.01000000" and body["timeInForce"] == "GTC" and body["type"] == "MARKET"
    assert body["fills"] == [
        {
            "price": "20010.00000000",
            "qty": "0.01000000",
            "commission": "0.00001000",
            "commissionAsset": "BTC",
            "tradeId": fill.number,
        }
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_result_and_ack_answers_leave_out_what_they_should(trader, user_id):
    replier = Replier(user_id)
    result = send(trader, "POST", "order", **LIMIT_BUY, newOrderRespType="RESULT")
    replier.finish()

    replier = Replier(user_id)
    ack = send(trader, "POST", "order", **LIMIT_BUY, newOrderRespType="ACK")
    replier.finish()

    assert list(result.json()) == RESULT_KEYS and result.json()["status"] == "NEW"
    assert list(ack.json()) == ACK_KEYS


# BEGIN, INSERT orders (RETURNING its id and number), INSERT sagas, INSERT outbox_messages, INSERT order_events,
# COMMIT; then one SELECT of the order's status after the waiter is registered. The reply itself is heard, not read.
PLACEMENT_STATEMENTS = 7


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_placement_costs_the_same_statements_whether_the_reply_comes_or_not(trader, user_id, settings):
    settings.ORDER_BINANCE_WAIT_S = 0
    send(trader, "POST", "order", **LIMIT_BUY)  # the symbol is in the process's cache, the listener started
    _until(lambda: notifications.listener().connected)  # else its first connect asks the waiter to read again
    settings.ORDER_BINANCE_WAIT_S = 2.0

    replier = Replier(user_id)
    with CaptureQueriesContext(connection) as answered:
        new = send(trader, "POST", "order", **LIMIT_BUY)
    replier.finish()
    settings.ORDER_BINANCE_WAIT_S = 0.2
    with CaptureQueriesContext(connection) as unanswered:
        pending = send(trader, "POST", "order", **LIMIT_BUY)
    with CaptureQueriesContext(connection) as named:
        send(trader, "POST", "order", **LIMIT_BUY, newClientOrderId="named")

    assert new.json()["status"] == "NEW" and pending.json()["status"] == "PENDING_NEW"
    assert len(answered.captured_queries) == PLACEMENT_STATEMENTS, [q["sql"] for q in answered.captured_queries]
    assert len(unanswered.captured_queries) == PLACEMENT_STATEMENTS
    assert len(named.captured_queries) == PLACEMENT_STATEMENTS + 1  # the lookup of the client order id


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_wait_hears_a_change_committed_while_the_listener_was_away(user_id):
    """The listener's connection is cut, the saga is answered before it is back: it wakes the waiter to read."""
    order = place(user_id)
    answers: list = []

    def wait() -> None:
        try:
            answers.append(
                notifications.order_state_wait(
                    order_id=order.id, settled=lambda s: s != OrderStatus.PENDING_NEW, timeout_s=8
                )
            )
        finally:
            connection.close()

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    _until(lambda: notifications.listener().waiting_for(order.id) and notifications.listener().connected)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {notifications.CHANNEL}"],
        )
        assert cursor.fetchall() == [(True,)]
    _until(lambda: not notifications.listener().connected)
    accept(order)  # committed while nobody listens: its notification is lost
    started = time.monotonic()

    waiting.join(8)

    assert answers and answers[0].status == OrderStatus.NEW
    assert time.monotonic() - started < 4  # at the reconnect (about a second), not at the 8 s bound


def _until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- the notification: in the transition's transaction, one statement per batch ---------------------------------


def _listening():
    """A connection of the test's own that LISTENs on the orders' channel."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute(f"LISTEN {notifications.CHANNEL}")
    return wrapper


def _heard(wrapper, wait: float = 0.5) -> list[str]:
    """Every payload that arrives within `wait` seconds (and any more that follow closely)."""
    pg = wrapper.connection
    payloads: list[str] = []
    while select.select([pg], [], [], wait)[0]:
        pg.poll()
        payloads += [n.payload for n in pg.notifies]
        del pg.notifies[:]
        wait = 0.1
    return payloads


class Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_the_notification_is_sent_at_the_commit_of_the_transition_and_never_after_a_rollback():
    kept, undone = place(), place()
    wrapper = _listening()
    try:
        with transaction.atomic():
            accept(kept)
            assert _heard(wrapper, 0.2) == []  # not before the commit
        heard = _heard(wrapper)
        with pytest.raises(Rollback), transaction.atomic():
            accept(undone)
            raise Rollback
        after_rollback = _heard(wrapper, 0.3)
    finally:
        wrapper.close()

    kept.refresh_from_db()
    assert heard == [f"{kept.id} NEW {int(kept.updated_at.timestamp() * 1000)} "]
    assert after_rollback == []
    assert Order.objects.get(id=undone.id).status == OrderStatus.PENDING_NEW


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_batch_of_changes_is_one_notify_statement_with_each_orders_last_status():
    orders = [open_order(side="SELL", quantity=Decimal("0.01"), price=Decimal("30000.00")) for _ in range(3)]
    wrapper = _listening()
    try:
        with CaptureQueriesContext(connection) as ctx, transaction.atomic():
            apply(trade(price="30001.00", qty="0.005"), trade(price="30002.00", qty="1"))  # partial, then filled
        heard = _heard(wrapper)
    finally:
        wrapper.close()

    notifying = [q["sql"] for q in ctx.captured_queries if "pg_notify" in q["sql"]]
    assert len(notifying) == 1
    assert sorted(p.split(" ")[:2] for p in heard) == sorted([str(o.id), "FILLED"] for o in orders)


# --- POST /api/v3/order: Binance's refusals ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"side": None}, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."),
        ({"symbol": None}, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"type": "SPOT"}, -1116, "Invalid orderType."),
        ({"type": "STOP_LOSS"}, -2010, "Stop loss orders are not supported for this symbol."),
        ({"type": "LIMIT_MAKER"}, -2010, "Unsupported order combination"),
        ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
        ({"timeInForce": None}, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
        ({"stopPrice": "1"}, -1106, "Parameter 'stopPrice' sent when not required."),
        ({"icebergQty": "0.001"}, -2010, "Iceberg orders are not supported for this symbol."),
        ({"quantity": "1e3"}, -1100,
         "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."),
        ({"price": "30000.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000001"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.0001", "price": "100.00"}, -1013, "Filter failure: MIN_NOTIONAL"),
        ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
        ({"symbol": "btc usdt"}, -1100,
         "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."),
        ({"newOrderRespType": "SHORT"}, -1130, "Data sent for parameter 'newOrderRespType' is not valid: one of ACK, "
         "RESULT, FULL."),
        ({"newClientOrderId": "no spaces"}, -1100,
         "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'."),
    ],
)  # fmt: skip
def test_a_bad_order_is_refused_with_binances_code_and_nothing_is_placed(trader, params, code, msg):
    body = {k: v for k, v in {**LIMIT_BUY, **params}.items() if v is not None}

    response = send(trader, "POST", "order", **body)

    assert response.status_code == 400
    assert refusal(response) == {"code": code, "msg": msg}
    assert not Order.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
def test_market_order_refusals(trader):
    market = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET"}

    with_tif = send(trader, "POST", "order", **market, quantity="0.01", timeInForce="GTC")
    both = send(trader, "POST", "order", **market, quantity="0.01", quoteOrderQty="100")
    neither = send(trader, "POST", "order", **market)

    assert refusal(with_tif) == {"code": -1114, "msg": "TimeInForce parameter sent when not required."}
    assert refusal(both) == {"code": -1106, "msg": "quoteOrderQty is only supported for MARKET BUY orders."}
    assert refusal(neither) == {"code": -1102, "msg": "Param 'quantity' or 'quoteOrderQty' must be sent, but not both."}


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
def test_a_second_order_with_the_same_client_order_id_is_a_duplicate(trader, user_id):
    first = send(trader, "POST", "order", **LIMIT_BUY, newClientOrderId="once")

    again = send(trader, "POST", "order", **{**LIMIT_BUY, "price": "31000.00"}, newClientOrderId="once")

    assert first.status_code == 200
    assert again.status_code == 400 and refusal(again) == {"code": -2010, "msg": "Duplicate order sent."}
    assert Order.objects.filter(user_id=user_id).count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
def test_a_symbol_that_is_not_trading_is_a_closed_market(trader):
    Symbol.objects.filter(symbol="XRPETH").update(is_trading=False)
    selectors.symbols_cache_clear()
    try:
        response = send(trader, "POST", "order", **{**LIMIT_BUY, "symbol": "XRPETH", "price": "0.0005"})
    finally:
        selectors.symbols_cache_clear()

    assert refusal(response) == {"code": -2010, "msg": "Market is closed."}


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
def test_parameters_may_come_in_the_query_string_and_the_body_but_each_once(trader, user_id):
    split = send(trader, "POST", "order", query={"symbol": "BTCUSDT", "side": "BUY"}, **{
        k: v for k, v in LIMIT_BUY.items() if k not in ("symbol", "side")})  # fmt: skip
    twice = send(trader, "POST", "order", query={"side": "BUY"}, **LIMIT_BUY)

    assert split.status_code == 200 and split.json()["status"] == "PENDING_NEW"
    assert refusal(twice) == {"code": -1101, "msg": "Duplicate values for a parameter detected."}
    assert Order.objects.filter(user_id=user_id).count() == 1


# --- the API key's rights ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols", "no_wait")
def test_a_read_only_key_may_read_but_not_place_or_cancel(reader, user_id):
    order = open_order(user_id)
    refused = [
        send(reader, "POST", "order", **LIMIT_BUY),
        send(reader, "POST", "order/test", **LIMIT_BUY),
        send(reader, "DELETE", "order", symbol="BTCUSDT", orderId=str(order.number)),
        send(reader, "DELETE", "openOrders", symbol="BTCUSDT"),
    ]
    read = send(reader, "GET", "order", symbol="BTCUSDT", orderId=str(order.number))

    for response in refused:
        assert response.status_code == 401
        assert refusal(response) == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    assert read.status_code == 200 and read.json()["status"] == "NEW"
    assert Order.objects.filter(user_id=user_id).count() == 1
    assert Order.objects.get(id=order.id).status == OrderStatus.NEW


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "order"), ("GET", "order"), ("DELETE", "order"), ("POST", "order/test"), ("GET", "openOrders"),
     ("DELETE", "openOrders"), ("GET", "allOrders"), ("GET", "myTrades")],
)  # fmt: skip
def test_every_endpoint_refuses_a_request_that_did_not_pass_the_key_check(method, path, user_id):
    anonymous = send(APIClient(), method, path, symbol="BTCUSDT")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=bearer(user_id)["Authorization"])  # signed in, but with no API key
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    assert anonymous.status_code == 401 and refusal(anonymous) == {"code": -2014, "msg": "API-key format invalid."}
    assert refusal(send(platform, method, path, symbol="BTCUSDT"))["code"] == -2014
    assert refusal(send(forged, method, path, symbol="BTCUSDT")) == {
        "code": -2015,
        "msg": "Invalid API-key, IP, or permissions for action.",
    }


# --- POST /api/v3/order/test ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_test_order_is_checked_like_a_real_one_and_nothing_is_placed(trader):
    ok = send(trader, "POST", "order/test", **LIMIT_BUY)
    rates = send(trader, "POST", "order/test", **LIMIT_BUY, computeCommissionRates="true")
    filtered = send(trader, "POST", "order/test", **{**LIMIT_BUY, "price": "30000.001"})
    unknown = send(trader, "POST", "order/test", **{**LIMIT_BUY, "symbol": "DOGEUSDT"})

    assert ok.status_code == 200 and ok.json() == {}
    assert rates.json() == {
        "standardCommissionForOrder": {"maker": "0.00100000", "taker": "0.00100000"},
        "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
        "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                     "discount": "0.00000000"},
    }  # fmt: skip
    assert refusal(filtered) == {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}
    assert refusal(unknown) == {"code": -1121, "msg": "Invalid symbol."}
    assert not Order.objects.exists() and published("order.created") == []


# --- GET /api/v3/order ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_an_order_is_found_by_its_order_id_or_client_order_id(trader, user_id):
    order = open_order(user_id, client_order_id="mine")
    by_number = send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(order.number))
    by_client_id = send(trader, "GET", "order", symbol="BTCUSDT", origClientOrderId="mine")
    by_both = send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(order.number), origClientOrderId="mine")

    assert by_number.status_code == 200
    body = by_number.json()
    assert list(body) == ORDER_KEYS
    assert body == {
        "symbol": "BTCUSDT",
        "orderId": order.number,
        "orderListId": -1,
        "clientOrderId": "mine",
        "price": "30000.00000000",
        "origQty": "0.01000000",
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": int(order.created_at.timestamp() * 1000),
        "updateTime": int(order.updated_at.timestamp() * 1000),
        "isWorking": True,
        "workingTime": int(order.accepted_at.timestamp() * 1000),
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "NONE",
    }
    assert by_client_id.json() == body == by_both.json()


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_an_order_not_found_is_binances_order_does_not_exist(trader, user_id):
    mine = place(user_id, client_order_id="mine")
    theirs = open_order(uuid.uuid4(), client_order_id="theirs")
    missing = {"code": -2013, "msg": "Order does not exist."}

    answers = [
        send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(theirs.number)),  # another user's
        send(trader, "GET", "order", symbol="BTCUSDT", origClientOrderId="theirs"),
        send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(mine.number + 1000)),
        send(trader, "GET", "order", symbol="ETHUSDT", orderId=str(mine.number)),  # another symbol
        send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(mine.number), origClientOrderId="other"),
    ]
    neither = send(trader, "GET", "order", symbol="BTCUSDT")

    for response in answers:
        assert response.status_code == 400 and refusal(response) == missing
    assert refusal(neither) == {
        "code": -1102,
        "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    }
    pending = send(trader, "GET", "order", symbol="BTCUSDT", orderId=str(mine.number)).json()
    assert pending["status"] == "PENDING_NEW" and pending["isWorking"] is False and pending["workingTime"] == -1


# --- DELETE /api/v3/order -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_cancelling_an_open_order_answers_binances_cancel(trader, user_id):
    order = open_order(user_id, client_order_id="to-cancel")

    response = send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(order.number), newClientOrderId="c-1")

    assert response.status_code == 200, response.json()
    order.refresh_from_db()
    assert response.json() == {
        "symbol": "BTCUSDT",
        "origClientOrderId": "to-cancel",
        "orderId": order.number,
        "orderListId": -1,
        "clientOrderId": "c-1",
        "transactTime": int(order.updated_at.timestamp() * 1000),
        "price": "30000.00000000",
        "origQty": "0.01000000",
        "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "CANCELED",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "selfTradePreventionMode": "NONE",
    }
    assert order.status == OrderStatus.CANCELED
    assert published("order.cancelled", order_id=str(order.id))[0]["status"] == "CANCELED"


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_cancel_of_an_unknown_done_or_foreign_order_is_unknown_order_sent(trader, user_id):
    done = open_order(user_id)
    send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(done.number))
    theirs = open_order(uuid.uuid4())

    again = send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(done.number))
    foreign = send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(theirs.number))
    unknown = send(trader, "DELETE", "order", symbol="BTCUSDT", origClientOrderId="never")

    for response in (again, foreign, unknown):
        assert response.status_code == 400 and refusal(response) == UNKNOWN_ORDER
    assert Order.objects.get(id=theirs.id).status == OrderStatus.NEW


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_cancel_restrictions_are_kept(trader, user_id):
    order = open_order(user_id)

    restricted = send(
        trader,
        "DELETE",
        "order",
        symbol="BTCUSDT",
        orderId=str(order.number),
        cancelRestrictions="ONLY_PARTIALLY_FILLED",
    )
    invalid = send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(order.number), cancelRestrictions="ANY")
    allowed = send(
        trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(order.number), cancelRestrictions="ONLY_NEW"
    )

    assert refusal(restricted) == {"code": -2011, "msg": "Order was not canceled due to cancel restrictions."}
    assert refusal(invalid) == {"code": -1145, "msg": "Invalid cancelRestrictions"}
    assert allowed.status_code == 200 and allowed.json()["status"] == "CANCELED"


# --- openOrders -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_open_orders_are_mine_not_done_of_one_symbol_or_all(trader, user_id):
    pending = place(user_id)
    accepted = open_order(user_id)
    eth = open_order(user_id, symbol="ETHUSDT", price=Decimal("2000.00"), quantity=Decimal("0.01"))
    cancelled = open_order(user_id)
    send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(cancelled.number))
    open_order(uuid.uuid4())  # another user's

    btc = send(trader, "GET", "openOrders", symbol="BTCUSDT")
    every = send(trader, "GET", "openOrders")
    unknown = send(trader, "GET", "openOrders", symbol="DOGEUSDT")

    assert [o["orderId"] for o in btc.json()] == [pending.number, accepted.number]
    assert [o["orderId"] for o in every.json()] == [pending.number, accepted.number, eth.number]
    assert [o["status"] for o in every.json()] == ["PENDING_NEW", "NEW", "NEW"]
    assert refusal(unknown) == {"code": -1121, "msg": "Invalid symbol."}


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_cancelling_all_open_orders_of_a_symbol_ends_mine_there_and_only_those(trader, user_id):
    pending = place(user_id)
    accepted = open_order(user_id)
    eth = open_order(user_id, symbol="ETHUSDT", price=Decimal("2000.00"), quantity=Decimal("0.01"))
    theirs = open_order(uuid.uuid4())

    response = send(trader, "DELETE", "openOrders", symbol="BTCUSDT")
    none_left = send(trader, "DELETE", "openOrders", symbol="BTCUSDT")

    assert response.status_code == 200
    assert [(o["orderId"], o["status"], o["origClientOrderId"]) for o in response.json()] == [
        (pending.number, "CANCELED", pending.client_order_id),
        (accepted.number, "CANCELED", accepted.client_order_id),
    ]
    statuses = dict(Order.objects.values_list("id", "status"))
    assert statuses[pending.id] == statuses[accepted.id] == OrderStatus.CANCELED
    assert statuses[eth.id] == statuses[theirs.id] == OrderStatus.NEW
    # the order still reserving had its saga compensated: whatever gets reserved for it is released
    assert Saga.objects.get(order_id=pending.id).state == SagaState.COMPENSATED
    assert published("portfolio.release_funds", order_id=str(pending.id))
    assert {d["order_id"] for d in published("order.cancelled")} == {str(pending.id), str(accepted.id)}
    assert refusal(none_left) == UNKNOWN_ORDER


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_cancelling_all_open_orders_costs_the_same_statements_for_one_or_many(trader, user_id):
    open_order(user_id)
    with CaptureQueriesContext(connection) as one:
        send(trader, "DELETE", "openOrders", symbol="BTCUSDT")
    for _ in range(5):
        open_order(user_id)
        place(user_id)
    with CaptureQueriesContext(connection) as many:
        answer = send(trader, "DELETE", "openOrders", symbol="BTCUSDT")

    assert len(answer.json()) == 10
    # SAVEPOINT, SELECT orders FOR UPDATE, SELECT sagas FOR UPDATE (only with orders still reserving), UPDATE orders,
    # UPDATE sagas, INSERT outbox_messages, INSERT order_events, pg_notify, RELEASE SAVEPOINT
    assert len(many.captured_queries) == len(one.captured_queries) + 2 == 9


# --- allOrders ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_all_orders_are_mine_of_the_symbol_oldest_first_from_an_order_id_or_the_newest(trader, user_id):
    orders = [place(user_id) for _ in range(4)]
    cancelled = orders[1]
    send(trader, "DELETE", "order", symbol="BTCUSDT", orderId=str(cancelled.number))
    open_order(user_id, symbol="ETHUSDT", price=Decimal("2000.00"), quantity=Decimal("0.01"))
    open_order(uuid.uuid4())
    numbers = [o.number for o in orders]

    every = send(trader, "GET", "allOrders", symbol="BTCUSDT")
    newest = send(trader, "GET", "allOrders", symbol="BTCUSDT", limit="2")
    from_second = send(trader, "GET", "allOrders", symbol="BTCUSDT", orderId=str(numbers[1]), limit="2")
    from_start = send(trader, "GET", "allOrders", symbol="BTCUSDT", startTime="0", limit="1")

    assert [o["orderId"] for o in every.json()] == numbers
    assert [o["status"] for o in every.json()] == ["PENDING_NEW", "CANCELED", "PENDING_NEW", "PENDING_NEW"]
    assert list(every.json()[0]) == ORDER_KEYS
    assert [o["orderId"] for o in newest.json()] == numbers[2:]
    assert [o["orderId"] for o in from_second.json()] == numbers[1:3]
    assert [o["orderId"] for o in from_start.json()] == numbers[:1]


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({}, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ({"symbol": "BTCUSDT", "limit": "1001"}, -1130,
         "Data sent for parameter 'limit' is not valid: must be between 1 and 1000."),
        ({"symbol": "BTCUSDT", "startTime": "0", "endTime": str(24 * 3600 * 1000 + 1)}, -1127,
         "More than 24 hours between startTime and endTime."),
        ({"symbol": "BTCUSDT", "startTime": "2", "endTime": "1"}, -1023, "Start time is greater than end time."),
        ({"symbol": "BTCUSDT", "orderId": "x"}, -1130, "Data sent for parameter 'orderId' is not valid."),
    ],
)  # fmt: skip
def test_all_orders_refusals(trader, params, code, msg):
    assert refusal(send(trader, "GET", "allOrders", **params)) == {"code": code, "msg": msg}


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_far_times_are_no_server_error(trader, user_id):
    place(user_id)
    far = str(2**63 - 1)

    orders = send(trader, "GET", "allOrders", symbol="BTCUSDT", startTime=far, endTime=far)
    trades = send(trader, "GET", "myTrades", symbol="BTCUSDT", startTime=far)

    assert orders.status_code == trades.status_code == 200
    assert orders.json() == trades.json() == []


# --- myTrades -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_my_trades_are_my_fills_with_binances_fields(trader, user_id):
    buy = open_order(user_id, quantity=Decimal("0.02"))
    sell = open_order(user_id, side="SELL", price=Decimal("31000.00"), quantity=Decimal("0.01"))
    open_order(uuid.uuid4())  # another user's buy, filled by the same trades
    apply(trade(price="29999.00", qty="0.01", ms=1_700_000_000_000))  # buy half filled (and theirs)
    apply(trade(price="29999.00", qty="0.05", ms=1_700_000_001_000))  # buy filled
    apply(trade(price="31000.00", qty="1", ms=1_700_000_002_000))  # sell filled
    fills = list(Fill.objects.filter(order__user_id=user_id).order_by("number"))

    every = send(trader, "GET", "myTrades", symbol="BTCUSDT")
    of_sell = send(trader, "GET", "myTrades", symbol="BTCUSDT", orderId=str(sell.number))
    from_second = send(trader, "GET", "myTrades", symbol="BTCUSDT", fromId=str(fills[1].number), limit="1")
    newest = send(trader, "GET", "myTrades", symbol="BTCUSDT", limit="1")
    timed = send(trader, "GET", "myTrades", symbol="BTCUSDT", startTime="1700000000500", endTime="1700000001500")

    assert [t["id"] for t in every.json()] == [f.number for f in fills] and len(fills) == 3
    assert every.json()[0] == {
        "symbol": "BTCUSDT",
        "id": fills[0].number,
        "orderId": buy.number,
        "orderListId": -1,
        "price": "30000.00000000",
        "qty": "0.01000000",
        "quoteQty": "300.00000000",
        "commission": "0.00001000",
        "commissionAsset": "BTC",
        "time": 1_700_000_000_000,
        "isBuyer": True,
        "isMaker": True,
        "isBestMatch": True,
    }
    last = every.json()[2]
    assert last["orderId"] == sell.number and last["isBuyer"] is False
    assert last["commission"] == "0.31000000" and last["commissionAsset"] == "USDT"
    assert [t["id"] for t in of_sell.json()] == [fills[2].number]
    assert [t["id"] for t in from_second.json()] == [fills[1].number]
    assert [t["id"] for t in newest.json()] == [fills[2].number]
    assert [t["id"] for t in timed.json()] == [fills[1].number]


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_my_trades_refuse_the_combinations_binance_refuses(trader):
    bad_combo = {"code": -1128, "msg": "Combination of optional parameters invalid."}

    assert refusal(send(trader, "GET", "myTrades", symbol="BTCUSDT", fromId="1", startTime="0")) == bad_combo
    assert refusal(send(trader, "GET", "myTrades", symbol="BTCUSDT", orderId="1", endTime="0")) == bad_combo
    assert send(trader, "GET", "myTrades", symbol="BTCUSDT", orderId="1", fromId="1").json() == []
    assert refusal(send(trader, "GET", "myTrades", symbol="DOGEUSDT")) == {"code": -1121, "msg": "Invalid symbol."}


# --- the integer ids ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_order_and_fill_numbers_come_back_from_their_inserts_and_grow(django_assert_num_queries):
    first = place(side="SELL")
    with django_assert_num_queries(6):  # SAVEPOINT, the four INSERTs, RELEASE: no read of the number after them
        second = place(side="SELL")
    accept(first), accept(second)
    apply(trade(price="30000.00", qty="1"))

    assert isinstance(first.number, int) and second.number > first.number
    numbers = list(Fill.objects.order_by("created_at", "id").values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 2 and all(isinstance(n, int) for n in numbers)
