"""The exchange's public websocket (combined `<symbol>@trade` streams) as a source of trades.

Reconnects with capped exponential backoff, drops trades it already passed on after a reconnect, and logs
gaps in each symbol's trade ids (trades the exchange made while the connection was down).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.sync.client import connect

from candles.trades import Trade

logger = logging.getLogger(__name__)

BINANCE_WS = "wss://stream.binance.com:9443"


def stream_url(base: str, symbols: list[str]) -> str:
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    return f"{base.rstrip('/')}/stream?streams={streams}"


def parse_frame(raw: str | bytes) -> Trade | None:
    """A combined-stream frame {"stream": ..., "data": {...}} or a bare payload; None if not a trade.

    Only the keys of the `trade` contract are read: others (old frames' `b`/`a`, `M`, future ones) are ignored.
    """
    doc = json.loads(raw)
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict) or data.get("e") != "trade":
        return None
    return Trade(
        symbol=str(data["s"]),
        trade_id=int(data["t"]),
        price=str(data["p"]),
        qty=str(data["q"]),
        time_ms=int(data["T"]),
        buyer_is_maker=bool(data["m"]),
    )


def binance_trades(
    symbols: list[str],
    *,
    base_url: str = BINANCE_WS,
    max_reconnects: int | None = None,
    max_backoff_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Trade]:
    """Trades as they happen; reconnects forever unless `max_reconnects` is given (then stops after that many)."""
    url = stream_url(base_url, symbols)
    last_ids: dict[str, int] = {}
    backoff = 0.5
    reconnects = 0
    while True:
        try:
            with connect(url, open_timeout=10, close_timeout=2, max_size=2**20) as ws:
                logger.info("market-data websocket connected", extra={"url": url})
                for raw in ws:
                    trade = parse_frame(raw)
                    if trade is None:
                        continue
                    backoff = 0.5  # the connection works: the next failure starts the backoff afresh
                    last = last_ids.get(trade.symbol)
                    if last is not None and trade.trade_id <= last:
                        continue  # replayed after a reconnect: already passed on
                    if last is not None and trade.trade_id > last + 1:
                        logger.warning(
                            "trade id gap",
                            extra={
                                "symbol": trade.symbol,
                                "after": last,
                                "next": trade.trade_id,
                                "missing": trade.trade_id - last - 1,
                            },
                        )
                    last_ids[trade.symbol] = trade.trade_id
                    yield trade
            reason = "closed by the server"
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except json.JSONDecodeError as exc:
            reason = f"bad frame: {exc}"
        reconnects += 1
        if max_reconnects is not None and reconnects > max_reconnects:
            logger.error("market-data websocket gave up", extra={"url": url, "reason": reason})
            return
        logger.warning(
            "market-data websocket lost; reconnecting",
            extra={"url": url, "reason": reason, "in_s": backoff, "attempt": reconnects},
        )
        sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
