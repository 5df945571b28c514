"""The fill engine: every trade on market-data is matched against the open orders of its symbol.

MARKET orders fill completely at the next trade's price (the paper market is assumed deep enough).
LIMIT orders fill at their limit price when a trade crosses it, up to the trade's quantity, which the
orders it crosses share in order of acceptance: so partial fills happen. IOC fills what its first
crossing trade allows and expires the rest; FOK fills completely on its first crossing trade or expires.
The last trade id per symbol is written in the same transaction as the fills: a trade at or below it
was applied already and is skipped, so redelivery changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from common.tracing import continued_span
from orders.filters import floor_to_step
from orders.models import OPEN_STATUSES, Fill, LastTrade, Order, OrderStatus, OrderType, Side, Symbol, TimeInForce
from orders.services.cancel import order_end
from orders.services.events import order_event_emit

EIGHT_PLACES = Decimal("0.00000001")


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


def trades_apply(*, trades: list[Trade]) -> int:
    """Apply a batch of trades (any symbols, any order); returns the number of fills made."""
    by_symbol: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        by_symbol[trade.symbol].append(trade)
    fills = 0
    with transaction.atomic():
        for symbol, symbol_trades in sorted(by_symbol.items()):
            pair = Symbol.objects.filter(symbol=symbol).first()
            if pair is None:
                continue  # a pair this exchange does not list: nothing can fill on it
            fills += _apply_symbol(pair, sorted(symbol_trades, key=lambda t: t.trade_id))
    return fills


def _apply_symbol(pair: Symbol, trades: list[Trade]) -> int:
    first = trades[0]
    LastTrade.objects.bulk_create(
        [LastTrade(symbol=pair, trade_id=-1, price=first.price, qty=first.qty, traded_at=first.traded_at)],
        ignore_conflicts=True,
    )
    last = LastTrade.objects.select_for_update().get(symbol=pair)
    fresh = [t for t in trades if t.trade_id > last.trade_id]
    if not fresh:
        return 0
    # Locked once per batch, in acceptance order: a cancel waits for the batch, never the other way round.
    book = list(
        Order.objects.select_for_update()
        .filter(symbol=pair, status__in=OPEN_STATUSES)
        .select_related("symbol")
        .order_by("accepted_at", "id")
    )
    fills = 0
    for trade in fresh:
        fills += _match(pair, trade, [o for o in book if o.status in OPEN_STATUSES])
    newest = fresh[-1]
    last.trade_id, last.price, last.qty, last.traded_at = newest.trade_id, newest.price, newest.qty, newest.traded_at
    last.save()
    return fills


def _match(pair: Symbol, trade: Trade, orders: list[Order]) -> int:
    available = trade.qty
    fills = 0
    for order in orders:
        if order.type == OrderType.MARKET:
            fills += _match_market(pair, trade, order)
            continue
        crosses = trade.price <= order.price if order.side == Side.BUY else trade.price >= order.price
        if not crosses:
            continue
        qty = min(order.remaining_qty, floor_to_step(pair, available))
        if order.time_in_force == TimeInForce.FOK and qty < order.remaining_qty:
            order_end(order, status=OrderStatus.EXPIRED, reason="FOK: the first crossing trade could not fill it all")
            continue
        if qty > 0:
            available -= qty
            _fill(order, trade, qty=qty, price=order.price, is_maker=order.time_in_force == TimeInForce.GTC)
            fills += 1
        if order.time_in_force == TimeInForce.IOC and order.status != OrderStatus.FILLED:
            order_end(order, status=OrderStatus.EXPIRED, reason="IOC: remainder after the first crossing trade")
    return fills


def _match_market(pair: Symbol, trade: Trade, order: Order) -> int:
    price = trade.price
    if order.quantity is not None:
        qty = order.remaining_qty
    else:
        qty = floor_to_step(pair, order.quote_order_qty / price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)
        if qty < pair.min_qty:
            order_end(order, status=OrderStatus.EXPIRED, reason="quote_order_qty buys less than one lot at this price")
            return 0
    if order.side == Side.BUY and _quote(qty, price) > order.reserved_amount:
        # The price ran past the reserved buffer: filling would spend funds that were never locked.
        order_end(order, status=OrderStatus.EXPIRED, reason="price moved beyond the reserved amount")
        return 0
    _fill(order, trade, qty=qty, price=price, is_maker=False)
    return 1


def _quote(qty: Decimal, price: Decimal) -> Decimal:
    return (qty * price).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)


def _fill(order: Order, trade: Trade, *, qty: Decimal, price: Decimal, is_maker: bool) -> Fill:
    pair = order.symbol
    quote_qty = _quote(qty, price)
    rate = settings.ORDER_MAKER_FEE_RATE if is_maker else settings.ORDER_TAKER_FEE_RATE
    # Binance charges the commission in the asset the order receives.
    if order.side == Side.BUY:
        fee, fee_asset = (qty * rate).quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP), pair.base_asset
    else:
        fee, fee_asset = (quote_qty * rate).quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP), pair.quote_asset
    fill = Fill.objects.create(
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
    order.save(update_fields=["quantity", "executed_qty", "cumulative_quote_qty", "status", "updated_at"])
    with continued_span(order.traceparent, "fill order", order_id=str(order.id), fill_id=str(fill.id)):
        _emit_filled(order, fill, pair=pair, trade=trade, is_maker=is_maker)
    return fill


def _emit_filled(order: Order, fill: Fill, *, pair, trade: Trade, is_maker: bool) -> None:
    price, qty, quote_qty, fee, fee_asset = fill.price, fill.qty, fill.quote_qty, fill.fee, fill.fee_asset
    order_event_emit(
        order,
        "order.filled",
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
