"""The orders API: placement, Binance-like validation errors, idempotency by client order id, ownership, listing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from common.outbox.models import OutboxMessage
from common.testing.auth import bearer
from orders.models import Order, OrderEvent, Saga, SagaState
from orders.tests.conftest import published
from orders.tests.factories import apply, open_order, place, trade

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("symbols")]

LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000",
    "price": "30000.00",
}


def _nothing_written() -> None:
    assert Order.objects.count() == 0
    assert Saga.objects.count() == 0
    assert OrderEvent.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_exchange_info_lists_every_symbol_with_its_filters(client):
    response = client.get("/api/exchange-info")

    assert response.status_code == 200
    symbols = {s["symbol"]: s for s in response.json()["symbols"]}
    assert set(symbols) >= {"BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPETH"}
    assert symbols["XRPETH"]["baseAsset"] == "XRP" and symbols["XRPETH"]["quoteAsset"] == "ETH"
    assert symbols["BTCUSDT"]["filters"] == [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        {"filterType": "MIN_NOTIONAL", "minNotional": "5.00000000", "applyToMarket": True},
    ]


def test_a_limit_buy_is_stored_pending_with_its_saga_reserve_command_and_created_event(api, user_id):
    response = api.post("/api/orders", LIMIT_BUY, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get()
    assert body["orderId"] == str(order.id) and body["status"] == "PENDING_NEW"
    assert body["origQty"] == "0.01000000" and body["price"] == "30000.00000000"
    assert body["executedQty"] == "0.00000000" and body["cummulativeQuoteQty"] == "0.00000000"
    assert body["fills"] == [] and body["clientOrderId"] == order.client_order_id
    saga = Saga.objects.get()
    assert saga.order_id == order.id and saga.state == SagaState.RESERVING and saga.current_step == "reserve_funds"
    assert saga.deadline is not None and saga.history[0]["step"] == "reserve_funds"
    [reserve] = published("portfolio.reserve_funds")
    assert reserve == {
        "order_id": str(order.id),
        "saga_id": str(saga.id),
        "user_id": str(user_id),
        "asset": "USDT",
        "amount": "300.00000000",
    }
    [created] = published("order.created")
    assert created["side"] == "BUY" and created["quantity"] == "0.01000000" and created["price"] == "30000.00000000"
    assert created["client_order_id"] == order.client_order_id and created["time_in_force"] == "GTC"
    # the reserve command goes to portfolio-commands keyed by user, the fact to order-events keyed by order
    rows = {m.event_type: m for m in OutboxMessage.objects.all()}
    assert (rows["portfolio.reserve_funds"].topic, rows["portfolio.reserve_funds"].key) == (
        "portfolio-commands",
        str(user_id),
    )
    assert (rows["order.created"].topic, rows["order.created"].key) == ("order-events", str(order.id))


def test_a_sell_reserves_its_base_quantity(api):
    response = api.post("/api/orders", {**LIMIT_BUY, "side": "SELL", "quantity": "0.5"}, format="json")

    assert response.status_code == 201
    [reserve] = published("portfolio.reserve_funds")
    assert (reserve["asset"], reserve["amount"]) == ("BTC", "0.50000000")


def test_a_market_buy_reserves_a_buffer_over_the_last_price(api):
    apply(trade(price="20000.00", qty="1"))

    response = api.post("/api/orders", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})

    assert response.status_code == 201, response.json()
    [reserve] = published("portfolio.reserve_funds")
    assert (reserve["asset"], reserve["amount"]) == ("USDT", "210.00000000")  # 0.01 x 20000 x 1.05


def test_a_market_buy_by_quote_amount_reserves_that_amount(api):
    response = api.post(
        "/api/orders", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["origQuoteOrderQty"] == "100.00000000"
    [reserve] = published("portfolio.reserve_funds")
    assert (reserve["asset"], reserve["amount"]) == ("USDT", "100.00000000")


def test_a_market_buy_without_a_known_price_is_refused_and_nothing_is_written(api):
    response = api.post(
        "/api/orders", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "-2010"
    assert "No market price is known for ETHUSDT" in response.json()["message"]
    _nothing_written()


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"price": "30000.005"}, "-1013", "Filter failure: PRICE_FILTER"),
        ({"price": "2000000"}, "-1013", "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000015"}, "-1013", "Filter failure: LOT_SIZE"),
        ({"quantity": "0"}, "-1013", "Filter failure: LOT_SIZE"),
        ({"quantity": "0.0001", "price": "100.00"}, "-1013", "Filter failure: MIN_NOTIONAL"),
        ({"symbol": "DOGEUSDT"}, "-1121", "Invalid symbol."),
        ({"quantity": "-1"}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"quantity": "abc"}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"quantity": "1e-3"}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"quantity": "NaN"}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"price": "1" * 40}, "-1100", "Illegal characters found in parameter 'price'"),
        ({"quantity": "0." + "1" * 40}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"quantity": True}, "-1100", "Illegal characters found in parameter 'quantity'"),
        ({"quantity": None}, "-1102", "Mandatory parameter 'quantity'"),
        ({"timeInForce": "DAY"}, "-1115", "Invalid timeInForce."),
        ({"side": "HOLD"}, "-1117", "Invalid side."),
        ({"type": "STOP"}, "-1116", "Invalid type."),
        ({"type": "MARKET"}, "-1106", "Parameter 'price' sent when not required."),
        ({"quoteOrderQty": "10"}, "-1106", "Parameter 'quoteOrderQty' sent when not required."),
        (
            {"newClientOrderId": "no spaces allowed"},
            "-1100",
            "Illegal characters found in parameter 'newClientOrderId'",
        ),
    ],
)
def test_each_invalid_order_is_a_400_with_a_binance_code_and_nothing_is_written(api, change, code, message):
    response = api.post("/api/orders", {**LIMIT_BUY, **change}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert body["message"].startswith(message)
    assert set(body) == {"code", "message", "details"}
    _nothing_written()


def test_a_filter_failure_says_which_limits_it_broke(api):
    response = api.post("/api/orders", {**LIMIT_BUY, "quantity": "0.000015"}, format="json")

    assert response.json()["details"] == {
        "filter": "LOT_SIZE",
        "quantity": "0.000015",
        "minQty": "0.00001000",
        "maxQty": "9000.00000000",
        "stepSize": "0.00001000",
    }


def test_a_json_number_is_read_as_an_exact_decimal(api):
    response = api.post(
        "/api/orders",
        data=b'{"symbol":"XRPETH","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":100,"price":0.00012345}',
        content_type="application/json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["price"] == "0.00012345"


def test_a_missing_body_field_is_a_400_never_a_500(api):
    response = api.post("/api/orders", {"side": "BUY"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "-1102"
    _nothing_written()


def test_the_same_client_order_id_returns_the_first_order_with_200(api):
    first = api.post("/api/orders", {**LIMIT_BUY, "newClientOrderId": "my-order-1"}, format="json")
    again = api.post("/api/orders", {**LIMIT_BUY, "newClientOrderId": "my-order-1", "price": "1.00"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["orderId"] == first.json()["orderId"] and again.json()["price"] == "30000.00000000"
    assert Order.objects.count() == 1 and Saga.objects.count() == 1
    assert len(published("portfolio.reserve_funds")) == 1


def test_another_user_may_reuse_a_client_order_id(api):
    api.post("/api/orders", {**LIMIT_BUY, "newClientOrderId": "shared"}, format="json")
    someone_else = APIClient(headers=bearer(uuid.uuid4()))
    other = someone_else.post("/api/orders", {**LIMIT_BUY, "newClientOrderId": "shared"}, format="json")

    assert other.status_code == 201
    assert Order.objects.count() == 2


def test_a_user_sees_and_cancels_only_their_own_orders(api, user_id):
    mine = place(user_id)
    theirs = open_order(uuid.uuid4())

    assert api.get(f"/api/orders/{mine.id}").status_code == 200
    assert api.get(f"/api/orders/{theirs.id}").status_code == 404
    assert api.get(f"/api/orders/{theirs.id}").json()["code"] == "-2013"
    assert api.delete(f"/api/orders/{theirs.id}").status_code == 404
    assert api.get("/api/orders/not-a-uuid").status_code == 404
    listed = api.get("/api/orders/").json()["results"]
    assert [o["orderId"] for o in listed] == [str(mine.id)]
    theirs.refresh_from_db()
    assert theirs.status == "NEW"


def test_the_list_filters_by_symbol_status_and_side_and_pages_with_a_cursor(api, user_id):
    for _ in range(3):
        place(user_id)
    sell = place(user_id, side="SELL", symbol="ETHUSDT", price=Decimal("2000.00"), quantity=Decimal("0.1"))
    accepted = open_order(user_id, symbol="ETHUSDT", price=Decimal("2000.00"), quantity=Decimal("0.1"))

    assert [o["orderId"] for o in api.get("/api/orders/?symbol=ethusdt&side=SELL").json()["results"]] == [str(sell.id)]
    assert [o["orderId"] for o in api.get("/api/orders/?status=NEW").json()["results"]] == [str(accepted.id)]
    first = api.get("/api/orders/?limit=2").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    assert [len(p["results"]) for p in (first, second, third)] == [2, 2, 1]
    assert third["next"] is None
    seen = [o["orderId"] for p in (first, second, third) for o in p["results"]]
    assert len(set(seen)) == 5 and seen[0] == str(accepted.id)


@pytest.mark.parametrize("limit", ["true", "0", "501", "\u00b2", "2.5"])
def test_a_limit_that_is_not_a_page_size_is_a_400_not_the_default(api, limit):
    response = api.get("/api/orders/", {"limit": limit})

    assert response.status_code == 400, response.content
    assert response.json()["details"] == {"parameter": "limit"}


def test_an_anonymous_caller_gets_401(client):
    assert client.get("/api/orders/").status_code == 401
    assert client.post("/api/orders", LIMIT_BUY).status_code == 401


def test_the_schema_lists_the_symbols_and_still_answers_before_the_symbols_table_exists(client, monkeypatch):
    from django.db import ProgrammingError

    from orders import selectors

    listed = client.get("/api/schema/?format=json").json()
    body = listed["paths"]["/api/orders/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"BTCUSDT", "ETHUSDT"} <= set(body["oneOf"][0]["properties"]["symbol"]["enum"])

    def missing_table():
        raise ProgrammingError('relation "symbols" does not exist')

    monkeypatch.setattr(selectors, "symbol_list", missing_table)
    fresh = client.get("/api/schema/?format=json")

    assert fresh.status_code == 200
    symbol = fresh.json()["paths"]["/api/orders/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "pattern" in symbol["oneOf"][0]["properties"]["symbol"]
