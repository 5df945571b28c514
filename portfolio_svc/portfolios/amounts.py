"""Decimal amounts: parsing what events carry, quantising to an asset's precision, and the strings JSON carries."""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation, localcontext

from common.exceptions import ApplicationError

ZERO = Decimal(0)
# The columns' scale (NUMERIC(38, 18)): an amount with more decimals would be rounded by the database.
MAX_PLACES = 18
MAX_INTEGER_DIGITS = 38 - MAX_PLACES
# Room for 38 digits and more: the default context (28 digits) would round or refuse large amounts.
_WIDE = Context(prec=80)


class InvalidAmount(ApplicationError):
    code = "invalid_amount"


def parse_amount(value: str | Decimal | int) -> Decimal:
    """A non-negative Decimal the columns store exactly; raises InvalidAmount otherwise (never a float)."""
    if isinstance(value, float):
        raise InvalidAmount("amounts are decimal strings, never floats")
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidAmount(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidAmount(f"{value!r} is not a non-negative amount")
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise InvalidAmount(f"{value!r} is too large")
    with localcontext(_WIDE):
        if amount != amount.quantize(Decimal(1).scaleb(-MAX_PLACES)):
            raise InvalidAmount(f"{value!r} has more than {MAX_PLACES} decimals")
    return amount


def quantize(amount: Decimal, precision: int) -> Decimal:
    """Down to the asset's precision: paper money is never rounded up into existence."""
    with localcontext(_WIDE):
        return amount.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_DOWN)


def amount_str(amount: Decimal, places: int = 8) -> str:
    """The JSON string of an amount: `places` decimals (Binance's style) unless the amount needs more."""
    with localcontext(_WIDE):
        exact = amount.quantize(Decimal(1).scaleb(-places))
        return format(exact if exact == amount else amount.normalize(), "f")


def exact_arithmetic():
    """A decimal context wide enough that sums of stored amounts are never rounded."""
    return localcontext(_WIDE)
