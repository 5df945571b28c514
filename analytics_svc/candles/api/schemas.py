"""The OpenAPI shapes of the Binance-compatible answers (klines, ticker price), and the listed symbols."""

from __future__ import annotations

from django.db import DatabaseError

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

    try:
        listed = selectors.symbol_list()
    except DatabaseError:  # not migrated yet: the schema stays as declared (a pattern, no enum)
        return result
    if not listed:
        return result
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("name") == "symbol":
                    parameter["schema"] = {"type": "string", "enum": listed}
    return result
