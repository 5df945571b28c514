"""Binance's stream payloads, built from the platform's events: field names and types as the exchange documents them
(binance-spot-api-docs web-socket-streams.md and user-data-stream.md): times in epoch milliseconds, ids as integers,
every decimal a string printed as the exchange prints it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from candles.trades import Trade

from common.binance import ZERO, binance_decimal

ORDER_LIST_ID = -1  # no order lists (OCO, OTO) on this exchange
STP_MODE = "NONE"
# portfolio_svc's refusals (balance.reservation_failed's reason, carried by order.rejected) that mean the account
# lacks the funds: Binance's executionReport names them INSUFFICIENT_BALANCES.
_SHORT_OF_FUNDS = frozenset({"insufficient_funds", "unknown_portfolio", "unknown_asset"})


def amount(value: Decimal | str | None) -> str:
    return ZERO if value is None or value == "" else binance_decimal(Decimal(value))


def iso_ms(value: str | None) -> int | None:
    """An event's ISO 8601 time ("2024-01-01T00:00:00.123Z") in epoch milliseconds."""
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


# --- market streams ----------------------------------------------------------------------------------------------


def trade(t: Trade, *, event_ms: int) -> dict[str, Any]:
    """`<symbol>@trade`. The order ids (b, a) the exchange once sent are not on the market-data topic."""
    return {
        "e": "trade",
        "E": event_ms,
        "s": t.symbol,
        "t": t.trade_id,
        "p": amount(t.price),
        "q": amount(t.qty),
        "T": t.time_ms,
        "m": t.buyer_is_maker,
        "M": True,
    }


def agg_trade(t: Trade, *, event_ms: int) -> dict[str, Any]:
    """`<symbol>@aggTrade`: one aggregate per trade, its id the trade's (as GET /api/v3/aggTrades answers)."""
    return {
        "e": "aggTrade",
        "E": event_ms,
        "s": t.symbol,
        "a": t.trade_id,
        "p": amount(t.price),
        "q": amount(t.qty),
        "f": t.trade_id,
        "l": t.trade_id,
        "T": t.time_ms,
        "m": t.buyer_is_maker,
        "M": True,
    }


@dataclass(slots=True)
class Candle:
    """The current kline of a symbol and interval, as folded so far."""

    symbol: str
    interval: str
    open_ms: int
    close_ms: int
    first_id: int
    last_id: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    taker_buy_volume: Decimal = Decimal(0)
    taker_buy_quote_volume: Decimal = Decimal(0)

    def add(self, t: Trade) -> None:
        price, qty = Decimal(t.price), Decimal(t.qty)
        quote = price * qty
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.quote_volume += quote
        self.trades += 1
        self.last_id = t.trade_id
        if not t.buyer_is_maker:  # the taker bought
            self.taker_buy_volume += qty
            self.taker_buy_quote_volume += quote


def kline(c: Candle, *, closed: bool, event_ms: int) -> dict[str, Any]:
    """`<symbol>@kline_<interval>`: the current candle, `x` true once it is closed."""
    return {
        "e": "kline",
        "E": event_ms,
        "s": c.symbol,
        "k": {
            "t": c.open_ms,
            "T": c.close_ms,
            "s": c.symbol,
            "i": c.interval,
            "f": c.first_id,
            "L": c.last_id,
            "o": amount(c.open),
            "c": amount(c.close),
            "h": amount(c.high),
            "l": amount(c.low),
            "v": amount(c.volume),
            "n": c.trades,
            "x": closed,
            "q": amount(c.quote_volume),
            "V": amount(c.taker_buy_volume),
            "Q": amount(c.taker_buy_quote_volume),
            "B": "0",
        },
    }


@dataclass(slots=True)
class DayWindow:
    """A symbol's 24 hour rolling figures (GET /api/v3/ticker/24hr's), kept up to date by the trades since."""

    symbol: str
    last_price: Decimal
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    last_id: int  # the last trade counted (-1: none)

    def add(self, t: Trade) -> None:
        price, qty = Decimal(t.price), Decimal(t.qty)
        if self.open is None:
            self.open = self.high = self.low = price
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.last_price = price
        self.volume += qty
        self.quote_volume += price * qty
        self.last_id = t.trade_id


def mini_ticker(w: DayWindow, *, event_ms: int) -> dict[str, Any]:
    """`<symbol>@miniTicker`: the 24 hour rolling window (not the UTC day). A quiet window opens at the last price."""
    return {
        "e": "24hrMiniTicker",
        "E": event_ms,
        "s": w.symbol,
        "c": amount(w.last_price),
        "o": amount(w.open if w.open is not None else w.last_price),
        "h": amount(w.high if w.high is not None else w.last_price),
        "l": amount(w.low if w.low is not None else w.last_price),
        "v": amount(w.volume),
        "q": amount(w.quote_volume),
    }


# --- user data streams -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class OrderView:
    """What the user data stream knows of an order: order.created's terms, the fills seen since."""

    symbol: str
    side: str = ""
    type: str = ""
    time_in_force: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    quote_order_qty: Decimal | None = None
    client_order_id: str = ""
    created_ms: int | None = None
    working_ms: int | None = None
    executed_qty: Decimal = Decimal(0)
    cumulative_quote_qty: Decimal = Decimal(0)
    number: int | None = None  # Binance's orderId (order_svc's Order.number) when the events carry it

    @classmethod
    def from_created(cls, data: dict[str, Any], *, time_ms: int | None) -> OrderView:
        return cls(
            symbol=data["symbol"],
            side=data["side"],
            type=data["type"],
            time_in_force=data.get("time_in_force"),
            quantity=_decimal(data.get("quantity")),
            price=_decimal(data.get("price")),
            quote_order_qty=_decimal(data.get("quote_order_qty")),
            client_order_id=data["client_order_id"],
            created_ms=time_ms,
            number=data.get("order_number"),
        )

    def learn(self, data: dict[str, Any]) -> None:
        """Terms an event carries (order_svc may add them to every fact); they win over what was known."""
        for key in ("side", "type", "client_order_id"):
            if data.get(key):
                setattr(self, key, data[key])
        if data.get("time_in_force"):
            self.time_in_force = data["time_in_force"]
        for key in ("quantity", "price", "quote_order_qty"):
            if data.get(key) is not None:
                setattr(self, key, _decimal(data[key]))
        if isinstance(data.get("order_number"), int):
            self.number = data["order_number"]


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(value)


def execution_report(
    order: OrderView, event_type: str, data: dict[str, Any], *, event_ms: int, transaction_ms: int
) -> dict[str, Any] | None:
    """Binance's executionReport for an order-events fact about `order` (already folded into it); None for a fact
    that is not one (order.created: the order is not in the book until portfolio_svc has reserved its funds)."""
    reject_reason = "NONE"
    last_qty = last_price = last_quote = commission = Decimal(0)
    commission_asset = None
    trade_id, is_maker = -1, False
    if event_type == "order.accepted":
        execution, status = "NEW", "NEW"
    elif event_type == "order.rejected":
        execution, status = "REJECTED", "REJECTED"
        if data.get("reason") in _SHORT_OF_FUNDS:
            reject_reason = "INSUFFICIENT_BALANCES"
    elif event_type == "order.filled":
        execution, status = "TRADE", data["status"]
        last_qty, last_price, last_quote = Decimal(data["qty"]), Decimal(data["price"]), Decimal(data["quote_qty"])
        commission, commission_asset = Decimal(data["fee"]), data["fee_asset"]
        trade_id = data["fill_number"] if isinstance(data.get("fill_number"), int) else -1
        is_maker = bool(data.get("is_maker", False))
    elif event_type == "order.cancelled":
        execution = status = data["status"]  # CANCELED, or EXPIRED (IOC/FOK remainder, MARKET without a price)
    else:
        return None
    on_book = status in ("NEW", "PARTIALLY_FILLED") and order.type == "LIMIT"
    report = {
        "e": "executionReport",
        "E": event_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force or "GTC",  # as Binance reports a MARKET order's
        "q": amount(order.quantity),
        "p": amount(order.price),
        "P": ZERO,
        "F": ZERO,
        "g": ORDER_LIST_ID,
        "C": order.client_order_id if execution == "CANCELED" else "",
        "x": execution,
        "X": status,
        "r": reject_reason,
        "i": order.number if order.number is not None else -1,
        "l": amount(last_qty),
        "z": amount(order.executed_qty),
        "L": amount(last_price),
        "n": amount(commission),
        "N": commission_asset,
        "T": transaction_ms,
        "t": trade_id,
        "I": 0,
        "w": on_book,
        "m": is_maker,
        "M": False,
        "O": order.created_ms if order.created_ms is not None else transaction_ms,
        "Z": amount(order.cumulative_quote_qty),
        "Y": amount(last_quote),
        "Q": amount(order.quote_order_qty),
        "V": STP_MODE,
    }
    if order.working_ms is not None:
        report["W"] = order.working_ms
    return report


def account_position(data: dict[str, Any], *, event_ms: int, update_ms: int) -> dict[str, Any] | None:
    """outboundAccountPosition from a balance event that carries the changed balances after it (`balances`: a list
    of {"asset", "available", "locked"}); None when it carries none (a delta alone tells no balance)."""
    balances = data.get("balances")
    if not isinstance(balances, list) or not balances:
        return None
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": update_ms,
        "B": [{"a": b["asset"], "f": amount(b.get("available")), "l": amount(b.get("locked"))} for b in balances],
    }


def balance_update(data: dict[str, Any], *, event_ms: int, clear_ms: int) -> dict[str, Any]:
    """balanceUpdate: a credit to the account from outside trading (balance.credited: paper funds), as a deposit."""
    return {"e": "balanceUpdate", "E": event_ms, "a": data["asset"], "d": amount(data["amount"]), "T": clear_ms}


def listen_key_expired(listen_key: str, *, event_ms: int) -> dict[str, Any]:
    """The last message of a user data stream whose listenKey expired or was closed. Binance documents the event
    time of this one as a string."""
    return {"e": "listenKeyExpired", "E": str(event_ms), "listenKey": listen_key}
