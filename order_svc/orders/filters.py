"""Binance's order rules: parsing of numeric parameters, symbol filters, and the error codes Binance answers with."""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

from common.exceptions import ApplicationError
from orders.models import OrderType, Side, Symbol, TimeInForce

# Binance's own regular expression for decimal parameters: no sign, no exponent, at most 20+20 digits.
DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)
# Digits enough for exact arithmetic on NUMERIC(32, 8) amounts and their grids; the default 28 would round them.
_EXACT = Context(prec=64)

ILLEGAL_CHARS = "-1100"
MANDATORY_PARAM = "-1102"
PARAM_NOT_REQUIRED = "-1106"
BAD_TIME_IN_FORCE = "-1115"
BAD_ORDER_TYPE = "-1116"
BAD_SIDE = "-1117"
BAD_SYMBOL = "-1121"
FILTER_FAILURE = "-1013"
NEW_ORDER_REJECTED = "-2010"
CANCEL_REJECTED = "-2011"
NO_SUCH_ORDER = "-2013"


class OrderNotFound(ApplicationError):
    status_code = 404
    code = NO_SUCH_ORDER


class CancelRestricted(ApplicationError):
    """The order is open, but not in the status the cancel was restricted to (Binance's cancelRestrictions)."""

    code = CANCEL_REJECTED


def parse_decimal(name: str, value: Any) -> Decimal | None:
    """A decimal parameter as Binance accepts it; None when absent. Raises -1100 for anything else."""
    if value is None or value == "":
        return None
    text = format(value, "f") if isinstance(value, Decimal) else str(value) if isinstance(value, int) else value
    if isinstance(value, bool) or not isinstance(text, str) or not _DECIMAL_RE.fullmatch(text):
        raise ApplicationError(
            f"Illegal characters found in parameter '{name}'; legal range is '{DECIMAL_PATTERN}'.",
            code=ILLEGAL_CHARS,
            details={"parameter": name, "value": str(value)[:64]},
        )
    try:
        return Decimal(text)
    except InvalidOperation:  # unreachable after the pattern, kept so a bad value can never be a 500
        raise ApplicationError(f"Illegal characters found in parameter '{name}'.", code=ILLEGAL_CHARS) from None


def parse_choice(name: str, value: Any, choices: type, code: str) -> str:
    if value is None or value == "":
        raise ApplicationError(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                               code=MANDATORY_PARAM, details={"parameter": name})  # fmt: skip
    if not isinstance(value, str) or value not in choices.values:
        raise ApplicationError(
            f"Invalid {name}.", code=code, details={"parameter": name, "allowed": list(choices.values)}
        )
    return value


def _filter_failure(name: str, **details: Any) -> ApplicationError:
    return ApplicationError(
        f"Filter failure: {name}",
        code=FILTER_FAILURE,
        details={"filter": name, **{k: str(v) for k, v in details.items()}},
    )


def _on_grid(value: Decimal, origin: Decimal, step: Decimal) -> bool:
    return (value - origin) % step == 0


def check_price(symbol: Symbol, price: Decimal) -> None:
    if price < symbol.min_price or price > symbol.max_price or not _on_grid(price, symbol.min_price, symbol.tick_size):
        raise _filter_failure(
            "PRICE_FILTER",
            price=price,
            minPrice=symbol.min_price,
            maxPrice=symbol.max_price,
            tickSize=symbol.tick_size,
        )


def check_quantity(symbol: Symbol, qty: Decimal) -> None:
    if qty < symbol.min_qty or qty > symbol.max_qty or not _on_grid(qty, symbol.min_qty, symbol.step_size):
        raise _filter_failure(
            "LOT_SIZE", quantity=qty, minQty=symbol.min_qty, maxQty=symbol.max_qty, stepSize=symbol.step_size
        )


def check_notional(symbol: Symbol, notional: Decimal) -> None:
    if notional < symbol.min_notional:
        raise _filter_failure("MIN_NOTIONAL", notional=notional, minNotional=symbol.min_notional)


def validate_shape(
    *,
    side: str,
    type_: str,
    time_in_force: str | None,
    quantity: Decimal | None,
    price: Decimal | None,
    quote_order_qty: Decimal | None,
) -> str | None:
    """The parameters an order type needs and refuses; returns the time in force to store."""
    parse_choice("side", side, Side, BAD_SIDE)
    parse_choice("type", type_, OrderType, BAD_ORDER_TYPE)
    if type_ == OrderType.LIMIT:
        time_in_force = parse_choice("timeInForce", time_in_force or None, TimeInForce, BAD_TIME_IN_FORCE)
        for name, value in (("quantity", quantity), ("price", price)):
            if value is None:
                raise ApplicationError(
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                    code=MANDATORY_PARAM,
                    details={"parameter": name},
                )
        if quote_order_qty is not None:
            raise _not_required("quoteOrderQty")
        return time_in_force
    for name, value in (("price", price), ("timeInForce", time_in_force)):
        if value not in (None, ""):
            raise _not_required(name)
    if quote_order_qty is not None and side != Side.BUY:
        raise ApplicationError("quoteOrderQty is only supported for MARKET BUY orders.", code=PARAM_NOT_REQUIRED)
    if (quantity is None) == (quote_order_qty is None):
        raise ApplicationError(
            "Param 'quantity' or 'quoteOrderQty' must be sent, but not both.",
            code=MANDATORY_PARAM,
            details={"parameter": "quantity"},
        )
    return None


def _not_required(name: str) -> ApplicationError:
    return ApplicationError(
        f"Parameter '{name}' sent when not required.", code=PARAM_NOT_REQUIRED, details={"parameter": name}
    )


def floor_to_step(symbol: Symbol, qty: Decimal) -> Decimal:
    """The largest quantity on the symbol's LOT_SIZE grid (min_qty + k * step_size) not above `qty`; 0 below min_qty.

    Never above `qty`: below the minimum is an explicit 0 (truncating a fraction of a step below it gives -0,
    which is >= 0), and the remainder, unlike a quotient rounded to the context's digits, is exact.
    """
    if qty < symbol.min_qty:
        return Decimal(0)
    with localcontext(_EXACT):
        return qty - (qty - symbol.min_qty) % symbol.step_size
