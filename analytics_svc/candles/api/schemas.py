"""The OpenAPI shapes of analytics_svc's Binance-compatible answers and parameters, and the listed symbols."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter

from candles.intervals import KLINE_INTERVALS
from common.binance import SYMBOL_PATTERN, SYMBOLS_PATTERN
from common.schema import with_listed_symbols

_DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "a decimal number as a string"}
_SIGNED = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "a signed decimal number as a string"}
_MS = {"type": "integer", "description": "ms since the epoch"}
_LONG = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _object(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), **extra}


def one_or_list(item: dict, description: str = "one symbol's (`symbol`), or a list (`symbols`, or every symbol)"):
    return {"oneOf": [item, {"type": "array", "items": item}], "description": description}


PING = {"type": "object", "properties": {}, "additionalProperties": False, "description": "{}"}
TIME = _object({"serverTime": _MS})
# Binance's kline: [open time, open, high, low, close, volume, close time, quote volume, trades,
# taker buy base volume, taker buy quote volume, "0"]
KLINES = {
    "type": "array",
    "items": {
        "type": "array",
        "minItems": 12,
        "maxItems": 12,
        "items": {"oneOf": [{"type": "integer"}, _DECIMAL]},
    },
}
PRICE = _object({"symbol": {"type": "string"}, "price": _DECIMAL})
PRICES = one_or_list(PRICE)
TRADES = {
    "type": "array",
    "items": _object(
        {
            "id": {"type": "integer"},
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "quoteQty": _DECIMAL,
            "time": _MS,
            "isBuyerMaker": {"type": "boolean"},
            "isBestMatch": {"type": "boolean"},
        }
    ),
}
AGG_TRADES = {
    "type": "array",
    "items": _object(
        {
            "a": {"type": "integer", "description": "aggregate trade id"},
            "p": _DECIMAL,
            "q": _DECIMAL,
            "f": {"type": "integer", "description": "first trade id"},
            "l": {"type": "integer", "description": "last trade id"},
            "T": _MS,
            "m": {"type": "boolean", "description": "the buyer was the maker"},
            "M": {"type": "boolean"},
        }
    ),
}
AVG_PRICE = _object(
    {"mins": {"type": "integer"}, "price": _DECIMAL, "closeTime": {**_MS, "description": "the last trade's time"}}
)
_MINI = {
    "symbol": {"type": "string"},
    "openPrice": _DECIMAL,
    "highPrice": _DECIMAL,
    "lowPrice": _DECIMAL,
    "lastPrice": _DECIMAL,
    "volume": _DECIMAL,
    "quoteVolume": _DECIMAL,
    "openTime": _MS,
    "closeTime": _MS,
    "firstId": {"type": "integer", "description": "-1 without a trade in the window"},
    "lastId": {"type": "integer", "description": "-1 without a trade in the window"},
    "count": {"type": "integer"},
}
_BOOK = {"description": "always 0: the book is order_svc's (GET /api/v3/ticker/bookTicker)"}
TICKER_FULL = _object(
    {
        "symbol": {"type": "string"},
        "priceChange": _SIGNED,
        "priceChangePercent": _SIGNED,
        "weightedAvgPrice": _DECIMAL,
        "prevClosePrice": _DECIMAL,
        "lastPrice": _DECIMAL,
        "lastQty": _DECIMAL,
        "bidPrice": {**_DECIMAL, **_BOOK},
        "bidQty": {**_DECIMAL, **_BOOK},
        "askPrice": {**_DECIMAL, **_BOOK},
        "askQty": {**_DECIMAL, **_BOOK},
        **{k: v for k, v in _MINI.items() if k != "symbol"},
    },
    title="FULL",
)
TICKER_MINI = _object(_MINI, title="MINI", additionalProperties=False)
TICKERS_24HR = {
    "anyOf": [
        TICKER_FULL,
        {"type": "array", "items": TICKER_FULL},
        TICKER_MINI,
        {"type": "array", "items": TICKER_MINI},
    ],
    "description": "one symbol's (`symbol`), or a list (`symbols`, or every symbol); `type` FULL or MINI",
}

# Parameters, as Binance names and bounds them.
SYMBOL = OpenApiParameter("symbol", {"type": "string", "pattern": SYMBOL_PATTERN}, required=True)
SYMBOL_OPTIONAL = OpenApiParameter(
    "symbol", {"type": "string", "pattern": SYMBOL_PATTERN}, description="one symbol (not with `symbols`)"
)
SYMBOLS = OpenApiParameter(
    "symbols",
    {"type": "string", "pattern": SYMBOLS_PATTERN},
    description='a JSON array, ["BTCUSDT","ETHUSDT"] (not with `symbol`); neither: every symbol',
)
START_TIME = OpenApiParameter("startTime", _LONG, description="ms since the epoch, at or after")
END_TIME = OpenApiParameter("endTime", _LONG, description="ms since the epoch, at or before")


def limit(default: int, maximum: int, what: str = "") -> OpenApiParameter:
    return OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": maximum}, description=f"default {default}{what}"
    )


KLINE_PARAMETERS = [
    SYMBOL,
    OpenApiParameter("interval", str, required=True, enum=list(KLINE_INTERVALS)),
    OpenApiParameter("startTime", _LONG, description="open time at or after, ms since the epoch"),
    OpenApiParameter("endTime", _LONG, description="open time at or before, ms since the epoch"),
    OpenApiParameter(
        "timeZone",
        {"type": "string", "pattern": r"^[+-]?[0-9]{1,2}(:[0-9]{2})?$"},
        description="the zone buckets are laid out in, -12:00 to +14:00 (default 0, UTC); times stay UTC",
    ),
    limit(500, 1000),
]


def symbol_enum(result: dict, generator, request, public: bool) -> dict:
    """POSTPROCESSING_HOOKS entry: a `symbol` parameter takes the symbols that have candles now."""
    from candles import selectors

    return with_listed_symbols(result, selectors.symbol_list)
