"""order_svc's part of Binance's public /api/v3: exchangeInfo from the symbols table, depth and bookTicker from the
resting LIMIT orders by price level, and Binance's error codes."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from orders.models import Order, OrderEvent, OrderStatus, Symbol
from orders.services import order_cancel
from orders.tests.factories import apply, open_order, place, trade

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("symbols")]


def test_exchange_info_lists_each_symbol_with_every_field_clients_read(client):
    before = int(time.time() * 1000)

    response = client.get("/api/v3/exchangeInfo")

    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "UTC" and before <= body["serverTime"] <= int(time.time() * 1000)
    assert body["exchangeFilters"] == []
    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000} in body[
        "rateLimits"
    ]
    assert [s["symbol"] for s in body["symbols"]] == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "XRPETH"]
    btc = body["symbols"][1]
    assert btc == {
        "symbol": "BTCUSDT",
        "status": "TRADING",
        "baseAsset": "BTC",
        "baseAssetPrecision": 8,
        "quoteAsset": "USDT",
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "MIN_NOTIONAL", "minNotional": "5.00000000", "applyToMarket": True, "avgPriceMins": 0},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }  # fmt: skip


def test_exchange_info_follows_the_symbols_table(client):
    Symbol.objects.filter(symbol="XRPETH").update(is_trading=False, tick_size=Decimal("0.00000010"))

    xrp = client.get("/api/v3/exchangeInfo", {"symbol": "XRPETH"}).json()["symbols"]
    listed = client.get("/api/v3/exchangeInfo", {"symbols": '["XRPETH","BTCUSDT"]'}).json()["symbols"]
    trading = client.get("/api/v3/exchangeInfo", {"symbolStatus": "TRADING"}).json()["symbols"]
    halted = client.get("/api/v3/exchangeInfo", {"symbolStatus": "HALT"}).json()["symbols"]
    margin = client.get("/api/v3/exchangeInfo", {"permissions": '["MARGIN"]'}).json()["symbols"]
    spot = client.get("/api/v3/exchangeInfo", {"permissions": "SPOT", "showPermissionSets": "false"}).json()

    assert [(s["symbol"], s["status"], s["filters"][0]["tickSize"]) for s in xrp] == [("XRPETH", "BREAK", "0.00000010")]
    assert [s["symbol"] for s in listed] == ["BTCUSDT", "XRPETH"]
    assert [s["symbol"] for s in trading] == ["BNBUSDT", "BTCUSDT", "ETHUSDT"]
    assert halted == [] and margin == []
    assert len(spot["symbols"]) == 4 and spot["symbols"][0]["permissionSets"] == []


@pytest.fixture
def book():
    """Resting orders of BTCUSDT, and orders that are not in its book."""
    first = open_order(side="BUY", price=Decimal("30000.00"), quantity=Decimal("0.01000"))
    open_order(side="BUY", price=Decimal("30000.00"), quantity=Decimal("0.02000"))
    open_order(side="BUY", price=Decimal("29999.50"), quantity=Decimal("0.01000"))
    open_order(side="SELL", price=Decimal("31000.00"), quantity=Decimal("0.01000"))
    open_order(side="SELL", price=Decimal("30500.00"), quantity=Decimal("0.01000"))
    open_order(side="SELL", price=Decimal("30500.00"), quantity=Decimal("0.02000"))
    apply(trade(price="30000.00", qty="0.004"))  # the first accepted order at 30000 fills 0.004 of its 0.01
    first.refresh_from_db()
    assert first.status == OrderStatus.PARTIALLY_FILLED
    # Not resting: an IOC (it only waits for a crossing trade), one not yet accepted, one cancelled.
    open_order(side="BUY", price=Decimal("30100.00"), quantity=Decimal("0.01000"), time_in_force="IOC")
    place(side="BUY", price=Decimal("30200.00"), quantity=Decimal("0.01000"))
    cancelled = open_order(side="SELL", price=Decimal("30400.00"), quantity=Decimal("0.01000"))
    order_cancel(order_id=cancelled.id)
    open_order(symbol="ETHUSDT", side="BUY", price=Decimal("2000.00"), quantity=Decimal("0.0100"))


def test_depth_sums_resting_limit_orders_by_price_level(client, book):
    response = client.get("/api/v3/depth", {"symbol": "BTCUSDT"})

    assert response.status_code == 200
    assert response.json() == {
        "lastUpdateId": OrderEvent.objects.order_by("-id").values_list("id", flat=True).first(),
        "bids": [["30000.00000000", "0.02600000"], ["29999.50000000", "0.01000000"]],
        "asks": [["30500.00000000", "0.03000000"], ["31000.00000000", "0.01000000"]],
    }


def test_depth_keeps_the_best_levels_up_to_the_limit_and_costs_four_queries(client, book, django_assert_num_queries):
    with django_assert_num_queries(4):  # the symbol, the update id, bids, asks
        body = client.get("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1}).json()
    huge = client.get("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 100000})

    assert body["bids"] == [["30000.00000000", "0.02600000"]]
    assert body["asks"] == [["30500.00000000", "0.03000000"]]
    assert huge.status_code == 200 and len(huge.json()["bids"]) == 2  # above 5000 means 5000, as on Binance


def test_the_update_id_grows_when_the_book_changes(client, book):
    before = client.get("/api/v3/depth", {"symbol": "BTCUSDT"}).json()["lastUpdateId"]
    resting = Order.objects.filter(symbol_id="BTCUSDT", price=Decimal("31000.00")).get()

    order_cancel(order_id=resting.id)

    after = client.get("/api/v3/depth", {"symbol": "BTCUSDT"}).json()
    assert after["lastUpdateId"] > before
    assert after["asks"] == [["30500.00000000", "0.03000000"]]


def test_book_ticker_is_the_best_level_of_each_side(client, book, django_assert_num_queries):
    one = client.get("/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}).json()
    with django_assert_num_queries(2):  # the symbols, the best levels of all of them
        every = client.get("/api/v3/ticker/bookTicker").json()
    listed = client.get("/api/v3/ticker/bookTicker", {"symbols": '["ETHUSDT","BNBUSDT"]'}).json()

    assert one == {
        "symbol": "BTCUSDT",
        "bidPrice": "30000.00000000",
        "bidQty": "0.02600000",
        "askPrice": "30500.00000000",
        "askQty": "0.03000000",
    }
    assert [t["symbol"] for t in every] == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "XRPETH"]
    assert listed == [
        {"symbol": "BNBUSDT", "bidPrice": "0.00000000", "bidQty": "0.00000000", "askPrice": "0.00000000",
         "askQty": "0.00000000"},
        {"symbol": "ETHUSDT", "bidPrice": "2000.00000000", "bidQty": "0.01000000", "askPrice": "0.00000000",
         "askQty": "0.00000000"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        ("exchangeInfo", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("exchangeInfo", {"symbols": '["BTCUSDT","NOPE"]'}, -1121, "Invalid symbol."),
        ("exchangeInfo", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, -1128, "Parameter 'symbol' and 'symbols'"),
        ("exchangeInfo", {"symbol": "BTCUSDT", "symbolStatus": "TRADING"}, -1128, "Combination of optional"),
        ("exchangeInfo", {"symbolStatus": "OPEN"}, -1122, "Invalid symbolStatus."),
        ("exchangeInfo", {"permissions": "spot"}, -1100, "Illegal characters found in parameter 'permissions'"),
        ("exchangeInfo", {"symbols": "BTCUSDT"}, -1100, "Illegal characters found in parameter 'symbols'"),
        ("depth", {}, -1102, "Mandatory parameter 'symbol'"),
        ("depth", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("depth", {"symbol": "BTCUSDT", "limit": "0"}, -1130, "Data sent for parameter 'limit'"),
        ("depth", {"symbol": "BTCUSDT", "limit": "ten"}, -1130, "Data sent for parameter 'limit'"),
        ("ticker/bookTicker", {"symbol": "btc"}, -1100, "Illegal characters found in parameter 'symbol'"),
        ("ticker/bookTicker", {"symbols": '["ETHUSDT","ETHUSDT"]'}, -1151, "Symbol is present multiple times"),
    ],
)
def test_bad_parameters_get_binances_codes(client, path, params, code, message):
    response = client.get(f"/api/v3/{path}", params)

    assert response.status_code == 400
    assert set(response.json()) == {"code", "msg"}
    assert response.json()["code"] == code
    assert response.json()["msg"].startswith(message)


def test_the_public_endpoints_need_no_login_and_ignore_a_bad_token(client):
    response = client.get("/api/v3/depth", {"symbol": "ETHUSDT"}, HTTP_AUTHORIZATION="Bearer nonsense")

    assert response.status_code == 200
    assert response.json()["bids"] == [] and response.json()["asks"] == []
