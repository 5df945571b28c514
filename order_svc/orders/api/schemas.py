"""The OpenAPI shapes of the orders API's Binance-style answers (order_output, symbol_output), as raw schemas."""

from __future__ import annotations

from common.schema import with_listed_symbols
from orders.models import OrderStatus, OrderType, Side, TimeInForce

DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "a decimal number as a string"}
MS = {"type": "integer", "description": "ms since the epoch"}

FILL = {
    "type": "object",
    "properties": {
        "price": DECIMAL,
        "qty": DECIMAL,
        "commission": DECIMAL,
        "commissionAsset": {"type": "string"},
        "tradeId": {"type": "integer"},
        "isMaker": {"type": "boolean"},
        "time": MS,
    },
    "required": ["price", "qty", "commission", "commissionAsset", "tradeId", "isMaker", "time"],
}
ORDER = {
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "orderId": {"type": "string", "format": "uuid"},
        "clientOrderId": {"type": "string"},
        "transactTime": MS,
        "updateTime": MS,
        "price": DECIMAL,
        "origQty": DECIMAL,
        "executedQty": DECIMAL,
        "cummulativeQuoteQty": DECIMAL,
        "origQuoteOrderQty": DECIMAL,
        "status": {"type": "string", "enum": OrderStatus.values},
        "timeInForce": {"type": "string", "enum": TimeInForce.values},
        "type": {"type": "string", "enum": OrderType.values},
        "side": {"type": "string", "enum": Side.values},
        "reason": {"type": "string", "nullable": True, "description": "why an order ended without filling"},
        "fills": {"type": "array", "items": FILL},
    },
    "required": [
        "symbol", "orderId", "clientOrderId", "transactTime", "updateTime", "price", "origQty", "executedQty",
        "cummulativeQuoteQty", "origQuoteOrderQty", "status", "timeInForce", "type", "side", "reason", "fills",
    ],
}  # fmt: skip
ORDER_PAGE = {
    "type": "object",
    "properties": {
        "next": {"type": "string", "format": "uri", "nullable": True},
        "previous": {"type": "string", "format": "uri", "nullable": True},
        "results": {"type": "array", "items": ORDER},
    },
    "required": ["next", "previous", "results"],
}
SYMBOL = {
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "status": {"type": "string", "enum": ["TRADING", "BREAK"]},
        "baseAsset": {"type": "string"},
        "quoteAsset": {"type": "string"},
        "orderTypes": {"type": "array", "items": {"type": "string"}},
        "timeInForce": {"type": "array", "items": {"type": "string"}},
        "quoteOrderQtyMarketAllowed": {"type": "boolean"},
        "filters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"filterType": {"type": "string", "enum": ["PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"]}},
                "required": ["filterType"],
                "additionalProperties": True,
            },
        },
    },
    "required": ["symbol", "status", "baseAsset", "quoteAsset", "orderTypes", "filters"],
}
EXCHANGE_INFO = {
    "type": "object",
    "properties": {
        "timezone": {"type": "string"},
        "serverTime": MS,
        "symbols": {"type": "array", "items": SYMBOL},
    },
    "required": ["timezone", "serverTime", "symbols"],
}
QUANTITY = {"type": "string", "pattern": r"^[0-9]{1,4}(\.[0-9]{1,8})?$", "description": "a decimal number as a string"}
_COMMON = {
    # The symbols listed now: filled in when the schema is generated (symbol_enum below).
    "symbol": {"type": "string", "pattern": r"^[A-Za-z0-9]{2,32}$"},
    "side": {"type": "string", "enum": Side.values},
    "newClientOrderId": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,36}$"},
}
ORDER_REQUEST = {
    "description": "Binance's names; our snake_case ones (time_in_force, quote_order_qty, client_order_id) work too",
    "oneOf": [
        {
            "type": "object",
            "title": "LIMIT",
            "properties": {
                **_COMMON,
                "type": {"type": "string", "enum": [OrderType.LIMIT]},
                "timeInForce": {"type": "string", "enum": TimeInForce.values},
                "quantity": QUANTITY,
                "price": QUANTITY,
            },
            "required": ["symbol", "side", "type", "timeInForce", "quantity", "price"],
        },
        {
            "type": "object",
            "title": "MARKET by quantity",
            "properties": {**_COMMON, "type": {"type": "string", "enum": [OrderType.MARKET]}, "quantity": QUANTITY},
            "required": ["symbol", "side", "type", "quantity"],
        },
        {
            "type": "object",
            "title": "MARKET by quote amount",
            "properties": {
                **_COMMON,
                "type": {"type": "string", "enum": [OrderType.MARKET]},
                "quoteOrderQty": {**QUANTITY, "description": "the quote amount to spend (BUY) or receive (SELL)"},
            },
            "required": ["symbol", "side", "type", "quoteOrderQty"],
        },
    ],
}


def symbol_enum(result: dict, generator, request, public: bool) -> dict:
    """POSTPROCESSING_HOOKS entry: the order request's and the list filter's `symbol` take the listed symbols."""
    from orders import selectors

    return with_listed_symbols(result, lambda: (s.symbol for s in selectors.symbol_list()))


# --- Binance's /api/v3 answers of order_svc: exchangeInfo, depth, ticker/bookTicker --------------------------

V3_DECIMAL = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{8}$", "description": "a decimal with 8 places"}
_LEVEL = {
    "type": "array",
    "items": V3_DECIMAL,
    "minItems": 2,
    "maxItems": 2,
    "description": "[price, quantity]",
}
DEPTH = {
    "type": "object",
    "properties": {
        "lastUpdateId": {"type": "integer", "description": "grows with every change of the book"},
        "bids": {"type": "array", "items": _LEVEL, "description": "best (highest) first"},
        "asks": {"type": "array", "items": _LEVEL, "description": "best (lowest) first"},
    },
    "required": ["lastUpdateId", "bids", "asks"],
}
BOOK_TICKER = {
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "bidPrice": V3_DECIMAL,
        "bidQty": V3_DECIMAL,
        "askPrice": V3_DECIMAL,
        "askQty": V3_DECIMAL,
    },
    "required": ["symbol", "bidPrice", "bidQty", "askPrice", "askQty"],
    "description": "an empty side is 0.00000000",
}
BOOK_TICKERS = {
    "oneOf": [BOOK_TICKER, {"type": "array", "items": BOOK_TICKER}],
    "description": "one symbol's (`symbol`), or a list (`symbols`, or every symbol)",
}
_FILTER = {
    "oneOf": [
        {
            "type": "object",
            "title": "PRICE_FILTER",
            "properties": {
                "filterType": {"type": "string", "enum": ["PRICE_FILTER"]},
                "minPrice": V3_DECIMAL,
                "maxPrice": V3_DECIMAL,
                "tickSize": V3_DECIMAL,
            },
            "required": ["filterType", "minPrice", "maxPrice", "tickSize"],
        },
        {
            "type": "object",
            "title": "LOT_SIZE or MARKET_LOT_SIZE",
            "properties": {
                "filterType": {"type": "string", "enum": ["LOT_SIZE", "MARKET_LOT_SIZE"]},
                "minQty": V3_DECIMAL,
                "maxQty": V3_DECIMAL,
                "stepSize": V3_DECIMAL,
            },
            "required": ["filterType", "minQty", "maxQty", "stepSize"],
        },
        {
            "type": "object",
            "title": "MIN_NOTIONAL",
            "properties": {
                "filterType": {"type": "string", "enum": ["MIN_NOTIONAL"]},
                "minNotional": V3_DECIMAL,
                "applyToMarket": {"type": "boolean"},
                "avgPriceMins": {"type": "integer", "description": "0: a MARKET order is checked at the last price"},
            },
            "required": ["filterType", "minNotional", "applyToMarket", "avgPriceMins"],
        },
    ]
}
_PRECISION = {"type": "integer", "description": "decimal places"}
_FLAG = {"type": "boolean"}
V3_SYMBOL = {
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "status": {"type": "string", "enum": ["TRADING", "BREAK"]},
        "baseAsset": {"type": "string"},
        "baseAssetPrecision": _PRECISION,
        "quoteAsset": {"type": "string"},
        "quotePrecision": _PRECISION,
        "quoteAssetPrecision": _PRECISION,
        "baseCommissionPrecision": _PRECISION,
        "quoteCommissionPrecision": _PRECISION,
        "orderTypes": {"type": "array", "items": {"type": "string", "enum": OrderType.values}},
        "icebergAllowed": _FLAG,
        "ocoAllowed": _FLAG,
        "otoAllowed": _FLAG,
        "quoteOrderQtyMarketAllowed": _FLAG,
        "allowTrailingStop": _FLAG,
        "cancelReplaceAllowed": _FLAG,
        "amendAllowed": _FLAG,
        "isSpotTradingAllowed": _FLAG,
        "isMarginTradingAllowed": _FLAG,
        "filters": {"type": "array", "items": _FILTER},
        "permissions": {"type": "array", "items": {"type": "string"}, "description": "empty: see permissionSets"},
        "permissionSets": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "defaultSelfTradePreventionMode": {"type": "string"},
        "allowedSelfTradePreventionModes": {"type": "array", "items": {"type": "string"}},
    },
}
V3_SYMBOL["required"] = list(V3_SYMBOL["properties"])
RATE_LIMIT = {
    "type": "object",
    "properties": {
        "rateLimitType": {"type": "string", "enum": ["REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"]},
        "interval": {"type": "string", "enum": ["SECOND", "MINUTE", "DAY"]},
        "intervalNum": {"type": "integer"},
        "limit": {"type": "integer"},
    },
    "required": ["rateLimitType", "interval", "intervalNum", "limit"],
}
V3_EXCHANGE_INFO = {
    "type": "object",
    "properties": {
        "timezone": {"type": "string", "enum": ["UTC"]},
        "serverTime": MS,
        "rateLimits": {"type": "array", "items": RATE_LIMIT},
        "exchangeFilters": {"type": "array", "items": {"type": "object"}},
        "symbols": {"type": "array", "items": V3_SYMBOL},
    },
    "required": ["timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"],
}


# --- Binance's SIGNED /api/v3 answers of order_svc: orders and the account's trades ---------------------------------

_ORDER_ID = {"type": "integer", "minimum": 1, "description": "Binance's integer orderId"}
_ORDER_LIST_ID = {"type": "integer", "enum": [-1], "description": "always -1: no order lists here"}
_STP = {"type": "string", "enum": ["NONE"]}
_ENUMS = {
    "status": {"type": "string", "enum": OrderStatus.values},
    "timeInForce": {"type": "string", "enum": TimeInForce.values, "description": "GTC for a MARKET order"},
    "type": {"type": "string", "enum": OrderType.values},
    "side": {"type": "string", "enum": Side.values},
}


def _closed(title: str, properties: dict, description: str = "") -> dict:
    """An object with exactly these fields, every one present (Binance's answers have no optional fields here)."""
    schema = {"type": "object", "title": title, "properties": properties, "additionalProperties": False}
    if properties:
        schema["required"] = list(properties)
    return {**schema, "description": description} if description else schema


_ACK_FIELDS = {
    "symbol": {"type": "string"},
    "orderId": _ORDER_ID,
    "orderListId": _ORDER_LIST_ID,
    "clientOrderId": {"type": "string"},
    "transactTime": MS,
}
_RESULT_FIELDS = {
    **_ACK_FIELDS,
    "price": V3_DECIMAL,
    "origQty": V3_DECIMAL,
    "executedQty": V3_DECIMAL,
    "origQuoteOrderQty": V3_DECIMAL,
    "cummulativeQuoteQty": V3_DECIMAL,
    **_ENUMS,
    "workingTime": {"type": "integer", "description": "when it was accepted (ms); -1 before"},
    "selfTradePreventionMode": _STP,
}
V3_FILL = _closed(
    "fill",
    {
        "price": V3_DECIMAL,
        "qty": V3_DECIMAL,
        "commission": V3_DECIMAL,
        "commissionAsset": {"type": "string"},
        "tradeId": {"type": "integer", "description": "the trade's id in /api/v3/myTrades"},
    },
)
V3_NEW_ORDER = {
    "description": "newOrderRespType decides the shape: ACK, RESULT or FULL (the default). A saga still running when "
    "the wait ends is answered with the ACK fields and its status (PENDING_NEW), whatever was asked.",
    "oneOf": [
        _closed("FULL", {**_RESULT_FIELDS, "fills": {"type": "array", "items": V3_FILL}}),
        _closed("RESULT", _RESULT_FIELDS),
        _closed("ACK", _ACK_FIELDS),
        _closed(
            "PENDING (the wait ended first)",
            {**_ACK_FIELDS, "status": {"type": "string", "enum": [OrderStatus.PENDING_NEW]}},
        ),
    ],
}
_RATES = _closed("rates", {"maker": V3_DECIMAL, "taker": V3_DECIMAL})
V3_TEST_ORDER = {
    "oneOf": [
        _closed("empty", {}, "the order passed every check (nothing was placed)"),
        _closed(
            "commission rates (computeCommissionRates=true)",
            {
                "standardCommissionForOrder": _RATES,
                "taxCommissionForOrder": _RATES,
                "discount": _closed(
                    "discount",
                    {
                        "enabledForAccount": {"type": "boolean"},
                        "enabledForSymbol": {"type": "boolean"},
                        "discountAsset": {"type": "string"},
                        "discount": V3_DECIMAL,
                    },
                ),
            },
        ),
    ]
}
V3_ORDER = _closed(
    "order",
    {
        "symbol": {"type": "string"},
        "orderId": _ORDER_ID,
        "orderListId": _ORDER_LIST_ID,
        "clientOrderId": {"type": "string"},
        "price": V3_DECIMAL,
        "origQty": V3_DECIMAL,
        "executedQty": V3_DECIMAL,
        "cummulativeQuoteQty": V3_DECIMAL,
        **_ENUMS,
        "stopPrice": V3_DECIMAL,
        "icebergQty": V3_DECIMAL,
        "time": MS,
        "updateTime": MS,
        "isWorking": {"type": "boolean", "description": "accepted (its funds reserved)"},
        "workingTime": {"type": "integer", "description": "when it was accepted (ms); -1 before"},
        "origQuoteOrderQty": V3_DECIMAL,
        "selfTradePreventionMode": _STP,
    },
)
V3_ORDERS = {"type": "array", "items": V3_ORDER, "description": "oldest first"}
V3_CANCELED = _closed(
    "canceled order",
    {
        "symbol": {"type": "string"},
        "origClientOrderId": {"type": "string", "description": "the order's client order id"},
        "orderId": _ORDER_ID,
        "orderListId": _ORDER_LIST_ID,
        "clientOrderId": {"type": "string", "description": "this cancel's id (newClientOrderId, or a made one)"},
        "transactTime": MS,
        "price": V3_DECIMAL,
        "origQty": V3_DECIMAL,
        "executedQty": V3_DECIMAL,
        "origQuoteOrderQty": V3_DECIMAL,
        "cummulativeQuoteQty": V3_DECIMAL,
        **_ENUMS,
        "selfTradePreventionMode": _STP,
    },
)
V3_CANCELED_LIST = {"type": "array", "items": V3_CANCELED}
V3_TRADE = _closed(
    "trade",
    {
        "symbol": {"type": "string"},
        "id": {"type": "integer", "description": "the account's trade id (one per fill)"},
        "orderId": _ORDER_ID,
        "orderListId": _ORDER_LIST_ID,
        "price": V3_DECIMAL,
        "qty": V3_DECIMAL,
        "quoteQty": V3_DECIMAL,
        "commission": V3_DECIMAL,
        "commissionAsset": {"type": "string"},
        "time": MS,
        "isBuyer": {"type": "boolean"},
        "isMaker": {"type": "boolean"},
        "isBestMatch": {"type": "boolean", "enum": [True]},
    },
)
V3_TRADES = {"type": "array", "items": V3_TRADE, "description": "oldest first"}
