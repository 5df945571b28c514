"""Offline sources of trades: a recorded CSV replayed, and a seeded simulator; plus real-time pacing."""

from __future__ import annotations

import csv
import heapq
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from candles.trades import Trade


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- replay ----------------------------------------------------------------------------------------

_FILE_SYMBOL = re.compile(r"binance_([A-Z0-9]+)_trades")


def symbol_from_path(path: Path) -> str | None:
    """binance_XRPETH_trades_20191011.csv names its symbol; other files need --symbols."""
    match = _FILE_SYMBOL.search(path.name)
    return match.group(1) if match else None


def replay_csv(path: Path, *, symbol: str, shift_to_ms: int | None = None) -> Iterator[Trade]:
    """Trades of a CSV with columns trade_id,time_ms,price,qty[,quote_qty],is_buyer_maker, in file order.

    With `shift_to_ms`, every time moves by the same offset so the first trade happens then (ids stay).
    """
    with path.open(newline="") as f:
        offset = None
        for row in csv.DictReader(f):
            time_ms = int(row["time_ms"])
            if offset is None:
                offset = 0 if shift_to_ms is None else shift_to_ms - time_ms
            yield Trade(
                symbol=symbol,
                trade_id=int(row["trade_id"]),
                price=row["price"],
                qty=row["qty"],
                time_ms=time_ms + offset,
                buyer_is_maker=row["is_buyer_maker"].strip().lower() == "true",
            )


# --- simulate --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    price: Decimal  # where the walk starts
    tick: Decimal  # price step (Binance's PRICE_FILTER tickSize)
    step: Decimal  # quantity step (LOT_SIZE stepSize)
    typical_qty: Decimal


MARKETS = {
    "BTCUSDT": Market(Decimal("60000"), Decimal("0.01"), Decimal("0.00001"), Decimal("0.02")),
    "ETHUSDT": Market(Decimal("3000"), Decimal("0.01"), Decimal("0.0001"), Decimal("0.3")),
    "XRPETH": Market(Decimal("0.0002"), Decimal("0.00000001"), Decimal("1"), Decimal("400")),
    "BNBUSDT": Market(Decimal("500"), Decimal("0.01"), Decimal("0.001"), Decimal("2")),
}
_DEFAULT_MARKET = Market(Decimal("100"), Decimal("0.01"), Decimal("0.001"), Decimal("1"))
# Crypto-like volatility: 80% a year, as a fraction per second.
SIGMA_PER_S = 0.8 / (365 * 24 * 3600) ** 0.5


def _round_to(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(ROUND_HALF_EVEN) * step).quantize(step)


def _walk(symbol: str, rng: random.Random, *, rate: float, start_ms: int, first_id: int) -> Iterator[Trade]:
    """One symbol's trades: Poisson arrivals, geometric Brownian motion, tick/step-rounded output.

    The walk itself runs in floats (a random draw, not an amount); every emitted price and quantity is a
    Decimal rounded to the market's tick and step, so the output looks like the exchange's.
    """
    market = MARKETS.get(symbol, _DEFAULT_MARKET)
    price = float(market.price)
    t = float(start_ms)
    trade_id = first_id
    while True:
        dt_s = rng.expovariate(rate)
        t += dt_s * 1000
        price *= 2.718281828459045 ** (SIGMA_PER_S * dt_s**0.5 * rng.gauss(0.0, 1.0) - SIGMA_PER_S**2 * dt_s / 2)
        rounded = max(_round_to(Decimal(repr(price)), market.tick), market.tick)
        qty = max(_round_to(market.typical_qty * Decimal(repr(rng.lognormvariate(0.0, 1.0))), market.step), market.step)
        yield Trade(symbol, trade_id, format(rounded, "f"), format(qty, "f"), int(t), rng.random() < 0.5)
        trade_id += 1


def simulate(symbols: list[str], *, seed: int = 42, rate: float = 3.0, start_ms: int | None = None) -> Iterator[Trade]:
    """Every symbol's seeded walk merged in time order, endless.

    Trade ids start at start_ms * 1000, so a restarted simulator keeps counting up past what the candles
    consumer already applied (it skips ids at or below the last one).
    """
    start = now_ms() if start_ms is None else start_ms
    # A seeded simulation, not a secret: the standard generator is what makes runs repeatable.
    walks = [
        _walk(s, random.Random(f"{seed}:{s}"), rate=rate, start_ms=start, first_id=start * 1000)  # noqa: S311
        for s in symbols
    ]
    yield from heapq.merge(*walks, key=lambda trade: trade.time_ms)


# --- pacing ----------------------------------------------------------------------------------------


def paced(
    trades: Iterable[Trade],
    *,
    speed: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Trade]:
    """Release each trade when its time comes, `speed` times real time; speed <= 0: as fast as possible."""
    if speed <= 0:
        yield from trades
        return
    origin: tuple[float, int] | None = None
    for trade in trades:
        if origin is None:
            origin = (clock(), trade.time_ms)
        due = origin[0] + (trade.time_ms - origin[1]) / 1000 / speed
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield trade
