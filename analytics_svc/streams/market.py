"""The market streams' state: each trade goes out on `@trade` and `@aggTrade`, and is folded into the current kline
of every subscribed `@kline_<interval>` and the 24 hour window of every subscribed `@miniTicker`.

A kline or ticker starts, at its first subscriber, from what the candles consumer stored (one query) and adds the
trades this process has seen since the seed's last trade id, so the current candle is whole from the first update.
A kline closes (sent with `x` true) when a trade of a later bucket arrives or, without one, once its close time has
passed on the clock (with a second's grace), after which a late trade of its bucket is not sent (the stored
candles count it); a mini ticker goes out at most once a second, as the exchange's does, when it changed. The
rolling window is read again every STREAMS_TICKER_REFRESH_S so the trades that leave it are not counted forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from candles.trades import Trade

from streams import names, payloads, selectors
from streams.hub import Hub
from streams.payloads import Candle, DayWindow
from streams.windows import bucket

logger = logging.getLogger(__name__)

DbRunner = Callable[..., Awaitable[Any]]  # run_db(function, **kwargs): the function in the database thread


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class KlineState:
    stream: str
    symbol: str
    interval: str
    candle: Candle | None = None
    last_id: int = -1  # the last trade folded (or counted by the seed): redeliveries and older trades are skipped
    closed_until: int = -1  # the close time of the last closed candle: a trade at or before it is late
    seeding: bool = True
    pending: list[Trade] = field(default_factory=list)

    def fold(self, t: Trade) -> list[tuple[Candle, bool]]:
        """Add a trade; returns the candles to send (a closed one first, when the trade opens the next bucket)."""
        if t.trade_id <= self.last_id:
            return []
        self.last_id = t.trade_id
        opened, closes = bucket(self.interval, t.time_ms)
        out: list[tuple[Candle, bool]] = []
        if self.candle is not None:
            if opened == self.candle.open_ms:
                self.candle.add(t)
                return [(self.candle, False)]
            if opened < self.candle.open_ms:
                return []  # a late trade of a bucket already closed
            out.append((self.candle, True))
            self.closed_until = self.candle.close_ms
            self.candle = None
        if closes <= self.closed_until:
            return out
        price = Decimal(t.price)
        self.candle = Candle(self.symbol, self.interval, opened, closes, t.trade_id, t.trade_id - 1, *[price] * 4)
        self.candle.add(t)
        out.append((self.candle, False))
        return out

    def expire(self, clock_ms: int, grace_ms: int) -> Candle | None:
        """The candle, closed, when its close time has passed on the clock (no later trade closed it)."""
        if self.candle is None or clock_ms <= self.candle.close_ms + grace_ms:
            return None
        closed, self.candle = self.candle, None
        self.closed_until = closed.close_ms
        return closed


@dataclass
class TickerState:
    stream: str
    symbol: str
    window: DayWindow | None = None
    dirty: bool = False
    seeding: bool = True
    pending: list[Trade] = field(default_factory=list)

    def fold(self, t: Trade) -> None:
        if self.window is None or t.trade_id <= self.window.last_id:
            return
        self.window.add(t)
        self.dirty = True


class Market:
    def __init__(
        self,
        hub: Hub,
        *,
        run_db: DbRunner,
        recent: int = 2048,
        close_grace_ms: int = 1000,
        ticker_refresh_s: float = 60.0,
        clock: Callable[[], int] = now_ms,
    ):
        self.hub = hub
        self.run_db = run_db
        self.clock = clock
        self.close_grace_ms = close_grace_ms
        self.ticker_refresh_s = ticker_refresh_s
        self.recent: dict[str, deque[Trade]] = {}
        self._recent_size = recent
        self.klines: dict[str, dict[str, KlineState]] = {}  # symbol -> stream name -> state
        self.tickers: dict[str, TickerState] = {}  # symbol -> state
        self.known: set[str] = set()
        self._known_at = 0.0
        self._known_refresh: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        self._ticker_read_at = time.monotonic()
        self.trades_seen = 0

    # --- symbols -------------------------------------------------------------------------------------------

    async def load_symbols(self) -> None:
        self.known |= await self.run_db(selectors.symbols_known)
        self._known_at = time.monotonic()

    async def symbol_known(self, symbol: str) -> bool:
        """A symbol is known once a trade of it was folded or seen. An unknown one is looked up again: one query a
        second at most, for every connection together (a flood of bad names cannot load the database)."""
        if symbol in self.known:
            return True
        if self._known_refresh is None:
            self._known_refresh = asyncio.ensure_future(self._refresh_symbols())
        try:
            await asyncio.shield(self._known_refresh)
        except Exception as exc:  # noqa: BLE001 - the database away: answer from what is known
            logger.warning("symbols not read", extra={"error": repr(exc)})
        return symbol in self.known

    async def _refresh_symbols(self) -> None:
        try:
            wait = 1.0 - (time.monotonic() - self._known_at)
            if wait > 0:
                await asyncio.sleep(wait)
            self._known_at = time.monotonic()  # a failed read counts too: the next one waits its second
            await self.load_symbols()
        finally:
            self._known_refresh = None

    # --- subscriptions -------------------------------------------------------------------------------------

    def start(self, stream: names.Stream) -> None:
        """A stream got its first subscriber: start its state (a kline's or ticker's seed runs in the background,
        the trades meanwhile wait for it)."""
        if stream.kind == names.KLINE and stream.name not in self.klines.get(stream.symbol, {}):
            state = KlineState(stream.name, stream.symbol, stream.interval)
            self.klines.setdefault(stream.symbol, {})[stream.name] = state
            self._spawn(self._seed_kline(state))
        elif stream.kind == names.MINI_TICKER and stream.symbol not in self.tickers:
            state = TickerState(stream.name, stream.symbol)
            self.tickers[stream.symbol] = state
            self._spawn(self._seed_ticker(state))

    def stop(self, stream: names.Stream) -> None:
        """A stream lost its last subscriber: drop its state."""
        if stream.kind == names.KLINE:
            states = self.klines.get(stream.symbol, {})
            states.pop(stream.name, None)
            if not states:
                self.klines.pop(stream.symbol, None)
        elif stream.kind == names.MINI_TICKER:
            self.tickers.pop(stream.symbol, None)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reference_ms(self, symbol: str) -> int:
        """The time the current bucket is that of: the symbol's last trade's (a replay at another speed than real
        time has its own clock), else now."""
        recent = self.recent.get(symbol)
        return max(recent[-1].time_ms, 0) if recent else self.clock()

    async def _seed_kline(self, state: KlineState) -> None:
        opened, closes = bucket(state.interval, self._reference_ms(state.symbol))
        try:
            seed = await self.run_db(
                selectors.kline_seed, symbol=state.symbol, interval=state.interval, open_ms=opened, close_ms=closes
            )
        except Exception as exc:  # noqa: BLE001 - the database away: the kline counts the trades seen from now
            logger.warning("kline not seeded", extra={"stream": state.stream, "error": repr(exc)})
            recent = self.recent.get(state.symbol)
            seed = selectors.KlineSeed(None, recent[-1].trade_id if recent else -1)
        if self.klines.get(state.symbol, {}).get(state.stream) is not state:
            return  # unsubscribed meanwhile
        state.candle, state.last_id = seed.candle, seed.mark
        if seed.candle is not None:
            state.closed_until = opened - 1
        for t in self._after(state.symbol, seed.mark, state.pending):
            state.fold(t)
        state.pending, state.seeding = [], False
        if state.candle is not None:
            self.hub.publish(state.stream, payloads.kline(state.candle, closed=False, event_ms=self.clock()))

    async def _seed_ticker(self, state: TickerState) -> None:
        try:
            windows = await self.run_db(selectors.day_windows, symbols=[state.symbol], now=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - the database away: no window to send yet; the next refresh
            logger.warning("ticker not seeded", extra={"stream": state.stream, "error": repr(exc)})
            windows = {}
        if self.tickers.get(state.symbol) is not state:
            return
        self._apply_window(state, windows.get(state.symbol), state.pending)
        state.pending, state.seeding = [], False

    def _apply_window(self, state: TickerState, window: DayWindow | None, pending: list[Trade]) -> None:
        state.window = window
        if window is None:
            return
        for t in self._after(state.symbol, window.last_id, pending):
            state.fold(t)
        state.dirty = True

    def _after(self, symbol: str, mark: int, pending: list[Trade]) -> list[Trade]:
        """The trades seen (kept recently, or waiting for a seed) past `mark`, in id order, each once."""
        seen = {t.trade_id: t for t in (*self.recent.get(symbol, ()), *pending) if t.trade_id > mark}
        return [seen[i] for i in sorted(seen)]

    # --- trades --------------------------------------------------------------------------------------------

    def on_trades(self, trades: list[Trade]) -> None:
        """A batch of market-data trades, in the order of their partitions (per symbol, by trade id)."""
        now = self.clock()
        for t in trades:
            self.trades_seen += 1
            self.known.add(t.symbol)
            recent = self.recent.get(t.symbol)
            if recent is None:
                recent = self.recent[t.symbol] = deque(maxlen=self._recent_size)
            recent.append(t)
            self.hub.publish(names.trade_stream(t.symbol), payloads.trade(t, event_ms=now))
            self.hub.publish(names.agg_trade_stream(t.symbol), payloads.agg_trade(t, event_ms=now))
            for state in self.klines.get(t.symbol, {}).values():
                if state.seeding:
                    state.pending.append(t)
                    continue
                for candle, closed in state.fold(t):
                    self.hub.publish(state.stream, payloads.kline(candle, closed=closed, event_ms=now))
            ticker = self.tickers.get(t.symbol)
            if ticker is not None:
                if ticker.seeding:
                    ticker.pending.append(t)
                else:
                    ticker.fold(t)

    def tick(self) -> None:
        """Once a second: close the klines whose time is over, send the tickers that changed."""
        now = self.clock()
        for states in list(self.klines.values()):
            for state in list(states.values()):
                if state.seeding:
                    continue
                reference = max(now, self._reference_ms(state.symbol))
                closed = state.expire(reference, self.close_grace_ms)
                if closed is not None:
                    self.hub.publish(state.stream, payloads.kline(closed, closed=True, event_ms=now))
        for ticker in list(self.tickers.values()):
            if ticker.dirty and ticker.window is not None:
                ticker.dirty = False
                self.hub.publish(ticker.stream, payloads.mini_ticker(ticker.window, event_ms=now))
        if self.tickers and time.monotonic() - self._ticker_read_at >= self.ticker_refresh_s:
            self._ticker_read_at = time.monotonic()
            self._spawn(self._refresh_tickers())

    async def _refresh_tickers(self) -> None:
        """Read every subscribed symbol's rolling window again (one query), then add the trades seen since."""
        symbols = [s for s, state in self.tickers.items() if not state.seeding]
        if not symbols:
            return
        try:
            windows = await self.run_db(selectors.day_windows, symbols=symbols, now=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - keep the windows as they are until the next refresh
            logger.warning("tickers not refreshed", extra={"error": repr(exc)})
            return
        for symbol in symbols:
            state = self.tickers.get(symbol)
            if state is not None and not state.seeding and symbol in windows:
                self._apply_window(state, windows[symbol], [])

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
