"""Binance's stream names: `<symbol>@trade`, `<symbol>@aggTrade`, `<symbol>@kline_<interval>`,
`<symbol>@miniTicker` (symbols lowercase, the rest as the exchange spells it), and user data streams named by their
listenKey."""

from __future__ import annotations

import re
from dataclasses import dataclass

from candles.intervals import KLINE_INTERVALS

TRADE, AGG_TRADE, KLINE, MINI_TICKER, USER_DATA = "trade", "aggTrade", "kline", "miniTicker", "userData"
MARKET_KINDS = (TRADE, AGG_TRADE, KLINE, MINI_TICKER)

_INTERVALS = "|".join(re.escape(name) for name in KLINE_INTERVALS)
_MARKET_RE = re.compile(rf"([a-z0-9\-_.]{{1,20}})@(trade|aggTrade|miniTicker|kline_({_INTERVALS}))")
# The keys POST /api/v3/userDataStream makes (streams.listen_keys): 64 letters and digits, as Binance's.
LISTEN_KEY_RE = re.compile(r"[A-Za-z0-9]{64}")


@dataclass(frozen=True, slots=True)
class Stream:
    name: str  # as the client names it: what LIST_SUBSCRIPTIONS answers and combined payloads carry
    kind: str
    symbol: str = ""  # the exchange's spelling (uppercase); "" for a user data stream
    interval: str | None = None


def parse(name: object) -> Stream | None:
    """The stream a name means, or None when it names none (Binance's "Invalid request: invalid stream")."""
    if not isinstance(name, str):
        return None
    if match := _MARKET_RE.fullmatch(name):
        symbol, kind, interval = match[1].upper(), match[2], match[3]
        if interval is not None:
            return Stream(name, KLINE, symbol, interval)
        return Stream(name, kind, symbol)
    if LISTEN_KEY_RE.fullmatch(name):
        return Stream(name, USER_DATA)
    return None


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


def agg_trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@aggTrade"


def kline_stream(symbol: str, interval: str) -> str:
    return f"{symbol.lower()}@kline_{interval}"


def mini_ticker_stream(symbol: str) -> str:
    return f"{symbol.lower()}@miniTicker"
