"""A trade as the market-data topic carries it (Binance's @trade payload), and its conversions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: str  # decimal strings as the exchange sends them: never through a float
    qty: str
    time_ms: int
    buyer_is_maker: bool  # Binance's `m`: True means the taker sold

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Trade:
        """From an event's data (already validated against the `trade` contract)."""
        return cls(data["s"], data["t"], data["p"], data["q"], data["T"], data["m"])

    def to_data(self, *, event_time_ms: int | None = None) -> dict[str, Any]:
        return {
            "e": "trade",
            "E": self.time_ms if event_time_ms is None else event_time_ms,
            "s": self.symbol,
            "t": self.trade_id,
            "p": self.price,
            "q": self.qty,
            "T": self.time_ms,
            "m": self.buyer_is_maker,
        }
