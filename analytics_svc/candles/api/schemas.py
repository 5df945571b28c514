"""The OpenAPI shapes of the Binance-compatible answers (klines, ticker price), and the listed symbols."""

from __future__ import annotations

from common.schema import with_listed_symbols

_DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "description": "a decimal number as a string"}
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
PRICE = {
    "type": "object",
    "properties": {"symbol": {"type": "string"}, "price": _DECIMAL},
    "required": ["symbol", "price"],
}
PRICES = {"oneOf": [PRICE, {"type": "array", "items": PRICE}], "description": "one symbol's, or every symbol's"}


def symbol_enum(result: dict, generator, request, public: bool) -> dict:
    """POSTPROCESSING_HOOKS entry: a `symbol` parameter takes the symbols that have candles now."""
    from candles import selectors

    return with_listed_symbols(result, selectors.symbol_list)
