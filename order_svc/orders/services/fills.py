"""The fill engine: every trade on market-data is matched against the open orders of its symbol.

MARKET orders fill completely at the next trade's price (the paper market is assumed deep enough).
LIMIT orders fill at their limit price when a trade crosses it, up to the trade's quantity, which the
orders it crosses share in order of acceptance: so partial fills happen. IOC fills what its first
crossing trade allows and expires the rest; FOK fills completely on its first crossing trade or expires.
The last trade id per symbol is written in the same transaction as the fills: a trade at or below it
was applied already and is skipped, so redelivery changes nothing.

A Kafka batch of trades costs the same statements however many trades, symbols and fills it holds: the
rows it needs are locked with one ordered SELECT ... FOR UPDATE per table, the trades are matched in
memory one after the other, and the effects are written with one statement per table (OrderWrites).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.bulk import bulk_update
from common.tracing import child_traceparent
from orders import selectors
from orders.filters import floor_to_step
from orders.models import OPEN_STATUSES, Fill, LastTrade, Order, OrderStatus, OrderType, Side, Symbol, TimeInForce
from orders.services.cancel import order_end
from orders.services.events import OrderMessage, order_events_emit, order_fact

EIGHT_PLACES = Decimal("0.00000001")
ORDER_FIELDS = ["quantity", "executed_qty", "cumulative_quote_qty", "status", "reason", "updated_at"]
LAST_TRADE_FIELDS = ["trade_id", "price", "qty", "traded_at", "updated_at"]

# The symbols come from the process's one cache (selectors.symbols_get); re-exported for the tests that clear it.
symbols_cache_clear = selectors.symbols_cache_clear


@dataclass(frozen=True)
class Trade:
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    traded_at: datetime
    buyer_is_maker: bool

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Trade:
        """From Binance's @trade payload (the `trade` contract)."""
        return cls(
            symbol=data["s"],
            trade_id=int(data["t"]),
            price=Decimal(data["p"]),
            qty=Decimal(data["q"]),
            traded_at=datetime.fromtimestamp(int(data["T"]) / 1000, tz=UTC),
            buyer_is_maker=bool(data["m"]),
        )


class OrderWrites:
    """What one batch of trades does to orders, kept in memory and written at the end, one statement per table.

    Its events are order-events facts with their history rows, emitted together in the order they happened.
    """

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.orders: dict[uuid.UUID, Order] = {}
        self.events: list[OrderMessage] = []

    def order_changed(self, order: Order) -> None:
        self.orders[order.id] = order

    def order_event(self, order: Order, type_: str, *, traceparent: str | None = None, **data: Any) -> None:
        self.events.append(order_fact(order, type_, traceparent=traceparent, **data))

    def write(self) -> None:
        if self.fills:
            Fill.objects.bulk_create(self.fills)
        if self.orders:
            now = timezone.now()  # bulk_update leaves auto_now fields alone
            for order in self.orders.values():
                order.updated_at = now
            bulk_update(list(self.orders.values()), ORDER_FIELDS)
        order_events_emit(self.events)


def trades_apply(*, trades: list[Trade]) -> int:
    """Apply a batch of trades (any symbols, any order); returns the number of fills made.

    Joins the caller's transaction (the consumer runner's, one per Kafka batch) or opens one.
    """
    by_symbol: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        by_symbol[trade.symbol].append(trade)
    if not by_symbol:
        return 0
    with transaction.atomic(savepoint=False):
        pairs = selectors.symbols_get(sorted(by_symbol))  # a pair this exchange does not list: nothing can fill on it
        if not pairs:
            return 0
        names = sorted(pairs)
        LastTrade.objects.bulk_create(
            [_first_mark(pairs[name], min(by_symbol[name], key=lambda t: t.trade_id)) for name in names],
            ignore_conflicts=True,
        )
        lasts = {
            last.symbol_id: last
            for last in LastTrade.objects.select_for_update().filter(symbol__in=names).order_by("symbol")
        }
        fresh = {name: new for name in names if (new := _fresh(by_symbol[name], after=lasts[name].trade_id))}
        if not fresh:
            return 0
        # One lock for the open book of every symbol of the batch, in acceptance order. A cancel locks the one
        # order it ends and waits for the batch (or the batch for it): it holds nothing else the batch needs.
        book: dict[str, list[Order]] = defaultdict(list)
        for order in (
            Order.objects.select_for_update()
            .filter(symbol__in=sorted(fresh), status__in=OPEN_STATUSES)
            .order_by("accepted_at", "id")
        ):
            order.symbol = pairs[order.symbol_id]
            book[order.symbol_id].append(order)
        writes = OrderWrites()
        fills = 0
        now = timezone.now()
        for name, new in fresh.items():
            for trade in new:
                fills += _match(pairs[name], trade, [o for o in book[name] if o.status in OPEN_STATUSES], writes)
            last, newest = lasts[name], new[-1]
            last.trade_id, last.price, last.qty = newest.trade_id, newest.price, newest.qty
            last.traded_at, last.updated_at = newest.traded_at, now  # bulk_update leaves auto_now fields alone
        writes.write()
        bulk_update([lasts[name] for name in fresh], LAST_TRADE_FIELDS)
    return fills


def _first_mark(pair: Symbol, trade: Trade) -> LastTrade:
    """The row of a symbol no trade was applied to yet: every trade is after it."""
    return LastTrade(symbol=pair, trade_id=-1, price=trade.price, qty=trade.qty, traded_at=trade.traded_at)


def _fresh(trades: list[Trade], *, after: int) -> list[Trade]:
    """The trades not applied yet, by trade id, each once (a batch may hold one trade twice)."""
    new = []
    for trade in sorted(trades, key=lambda t: t.trade_id):
        if trade.trade_id > after:
            new.append(trade)
            after = trade.trade_id
    return new


def _match(pair: Symbol, trade: Trade, orders: list[Order], writes: OrderWrites) -> int:
    available = trade.qty
    fills = 0
    for order in orders:
        if order.type == OrderType.MARKET:
            fills += _match_market(pair, trade, order, writes)
            continue
        crosses = trade.price <= order.price if order.side == Side.BUY else trade.price >= order.price
        if not crosses:
            continue
        qty = min(order.remaining_qty, floor_to_step(pair, available))
        if order.time_in_force == TimeInForce.FOK and qty < order.remaining_qty:
            reason = "FOK: the first crossing trade could not fill it all"
            order_end(order, status=OrderStatus.EXPIRED, reason=reason, writes=writes)
            continue
        if qty > 0:
            available -= qty
            _fill(order, trade, writes, qty=qty, price=order.price, is_maker=order.time_in_force == TimeInForce.GTC)
            fills += 1
        if order.time_in_force == TimeInForce.IOC and order.status != OrderStatus.FILLED:
            reason = "IOC: remainder after the first crossing trade"
            order_end(order, status=OrderStatus.EXPIRED, reason=reason, writes=writes)
    return fills


def _match_market(pair: Symbol, trade: Trade, order: Order, writes: OrderWrites) -> int:
    price = trade.price
    if order.quantity is not None:
        qty = order.remaining_qty
    else:
        qty = floor_to_step(pair, order.quote_order_qty / price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)
        if qty < pair.min_qty:
            reason = "quote_order_qty buys less than one lot at this price"
            order_end(order, status=OrderStatus.EXPIRED, reason=reason, writes=writes)
            return 0
    if order.side == Side.BUY and _quote(qty, price) > order.reserved_amount:
        # The price ran past the reserved buffer: filling would spend funds that were never locked.
        order_end(order, status=OrderStatus.EXPIRED, reason="price moved beyond the reserved amount", writes=writes)
        return 0
    _fill(order, trade, writes, qty=qty, price=price, is_maker=False)
    return 1


def _quote(qty: Decimal, price: Decimal) -> Decimal:
    return (qty * price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)


def _fill(order: Order, trade: Trade, writes: OrderWrites, *, qty: Decimal, price: Decimal, is_maker: bool) -> Fill:
    pair = order.symbol
    quote_qty = _quote(qty, price)
    rate = settings.ORDER_MAKER_FEE_RATE if is_maker else settings.ORDER_TAKER_FEE_RATE
    # Binance charges the commission in the asset the order receives.
    if order.side == Side.BUY:
        fee, fee_asset = (qty * rate).quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP), pair.base_asset
    else:
        fee, fee_asset = (quote_qty * rate).quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP), pair.quote_asset
    fill = Fill(  # its id (a uuid4 default) is set now: the event carries it before the insert
        order=order,
        trade_id=trade.trade_id,
        price=price,
        qty=qty,
        quote_qty=quote_qty,
        fee=fee,
        fee_asset=fee_asset,
        is_maker=is_maker,
        executed_at=trade.traded_at,
    )
    if order.quantity is None:  # a MARKET BUY by quote amount: its quantity is what the price bought
        order.quantity = qty
    order.executed_qty += qty
    order.cumulative_quote_qty += quote_qty
    order.status = OrderStatus.FILLED if order.executed_qty >= order.quantity else OrderStatus.PARTIALLY_FILLED
    writes.fills.append(fill)
    writes.order_changed(order)
    # The fill's event continues the order's trace (from the request that placed it), not the batch's.
    traceparent = child_traceparent(order.traceparent, "fill order", order_id=str(order.id), fill_id=str(fill.id))
    _emit_filled(order, fill, writes, pair=pair, trade=trade, is_maker=is_maker, traceparent=traceparent or None)
    return fill


def _emit_filled(
    order: Order, fill: Fill, writes: OrderWrites, *, pair, trade: Trade, is_maker: bool, traceparent: str | None
) -> None:
    price, qty, quote_qty, fee, fee_asset = fill.price, fill.qty, fill.quote_qty, fill.fee, fill.fee_asset
    writes.order_event(
        order,
        "order.filled",
        traceparent=traceparent,
        fill_id=str(fill.id),
        base_asset=pair.base_asset,
        quote_asset=pair.quote_asset,
        side=order.side,
        price=price,
        qty=qty,
        quote_qty=quote_qty,
        fee=fee,
        fee_asset=fee_asset,
        status=order.status,
        remaining_qty=order.quantity - order.executed_qty,
        executed_at=trade.traded_at,
        is_maker=is_maker,
        trade_id=trade.trade_id,
    )
