"""LOT_SIZE rounding of the fill engine: floor_to_step never gives more than it was given."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.filters import floor_to_step
from orders.models import Symbol

# BTCUSDT's LOT_SIZE as the seed migration sets it; no database needed for the arithmetic.
BTC = Symbol(symbol="BTCUSDT", min_qty=Decimal("0.00001"), max_qty=Decimal("9000"), step_size=Decimal("0.00001"))
# A grid whose origin is not a multiple of its step: the steps count from min_qty.
OFFSET = Symbol(symbol="OFFSET", min_qty=Decimal("0.00015"), max_qty=Decimal("9000"), step_size=Decimal("0.0001"))
PAIRS = {"BTCUSDT": BTC, "OFFSET": OFFSET}


@pytest.mark.parametrize(
    ("pair", "qty", "floored"),
    [
        # a fraction of a step below the minimum: truncated toward zero that is -0 steps, and -0 >= 0
        ("BTCUSDT", "0.000004", "0"),
        ("BTCUSDT", "0.0000099999", "0"),
        ("BTCUSDT", "0", "0"),
        ("BTCUSDT", "0.00001", "0.00001"),
        ("BTCUSDT", "0.0000100001", "0.00001"),
        ("BTCUSDT", "0.0000349", "0.00003"),
        ("BTCUSDT", "0.00003", "0.00003"),
        ("BTCUSDT", "0.01", "0.01"),
        ("OFFSET", "0.00014", "0"),
        ("OFFSET", "0.00015", "0.00015"),
        ("OFFSET", "0.00034", "0.00025"),
        ("OFFSET", "0.00035", "0.00035"),
    ],
)
def test_floor_to_step_gives_the_largest_grid_quantity_not_above_the_input(pair, qty, floored):
    assert floor_to_step(PAIRS[pair], Decimal(qty)) == Decimal(floored)


def test_a_quantity_below_the_minimum_lot_floors_to_zero_not_to_the_minimum():
    floored = floor_to_step(BTC, Decimal("0.000004"))

    assert floored == 0 and not floored.is_signed()


def test_a_quantity_with_more_digits_than_decimals_default_precision_floors_exactly():
    # NUMERIC(32, 8) holds 30 digits here; in 28-digit arithmetic the quotient rounded up to the next lot.
    qty = Decimal("9999999999999999999999.99999999")

    assert floor_to_step(BTC, qty) == Decimal("9999999999999999999999.99999")


@pytest.mark.parametrize("name", PAIRS)
def test_floor_to_step_is_never_above_its_input_and_always_on_the_grid(name):
    pair = PAIRS[name]
    for tenth_of_a_step in range(0, 200):
        qty = pair.step_size * tenth_of_a_step / 10

        floored = floor_to_step(pair, qty)

        assert 0 <= floored <= qty, qty
        if qty < pair.min_qty:
            assert floored == 0, qty
        else:
            assert (floored - pair.min_qty) % pair.step_size == 0, qty
            assert floored + pair.step_size > qty, qty  # the largest such quantity
