"""Placing an order: validate against the symbol's filters, then store it and start its saga in one transaction.

A placement costs four statements in that transaction (the order, its saga, its two outbox rows, their two
order events) and no read beside them: the symbol comes from the process's cache, and only a MARKET order by
quantity reads the last price; a client order id is looked up first only when one is given.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from common.exceptions import ApplicationError
from common.tracing import current_trace_headers
from orders import filters, selectors
from orders.models import LastTrade, Order, OrderStatus, OrderType, Side, Symbol
from orders.saga import saga_begin
from orders.services.events import funds_reserve_command, order_events_emit, order_fact

EIGHT_PLACES = Decimal("0.00000001")
ZERO = Decimal("0E-8")  # with 8 places, as the database gives it back: the answer is built from the object
# Binance's rule for newClientOrderId.
CLIENT_ORDER_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")


def order_place(
    *,
    user_id: uuid.UUID,
    symbol: str,
    side: str,
    type_: str,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    time_in_force: str | None = None,
    quote_order_qty: Decimal | None = None,
    client_order_id: str | None = None,
) -> tuple[Order, bool]:
    """Place an order (PENDING_NEW) and ask portfolio_svc to reserve its funds; returns (order, created).

    The same client_order_id of the same user returns the order it placed first, with created=False,
    whatever else this call says: placement is idempotent, concurrent duplicates included.
    """
    if client_order_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(str(client_order_id)):
        raise ApplicationError(
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            code=filters.ILLEGAL_CHARS,
            details={"parameter": "client_order_id"},
        )
    if client_order_id and (
        existing := selectors.order_get_by_client_id(user_id=user_id, client_order_id=client_order_id)
    ):
        return existing, False

    plan = order_check(
        symbol=symbol,
        side=side,
        type_=type_,
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        quote_order_qty=quote_order_qty,
    )
    pair, time_in_force, asset, amount = plan.pair, plan.time_in_force, plan.asset, plan.amount
    quantity, price, quote_order_qty = plan.quantity, plan.price, plan.quote_order_qty

    client_order_id = client_order_id or uuid.uuid4().hex
    try:
        with transaction.atomic():
            order = Order.objects.create(
                user_id=user_id,
                client_order_id=client_order_id,
                symbol=pair,
                side=side,
                type=type_,
                time_in_force=time_in_force,
                quantity=quantity,
                price=price,
                quote_order_qty=quote_order_qty,
                status=OrderStatus.PENDING_NEW,
                executed_qty=ZERO,
                cumulative_quote_qty=ZERO,
                reserved_asset=asset,
                reserved_amount=amount,
                traceparent=current_trace_headers().get("traceparent", ""),
            )
            saga = saga_begin(order=order, asset=asset, amount=amount)
            order_events_emit(
                [
                    order_fact(
                        order,
                        "order.created",
                        side=side,
                        type=type_,
                        client_order_id=client_order_id,
                        time_in_force=time_in_force,
                        quantity=quantity,
                        price=price,
                        quote_order_qty=quote_order_qty,
                    ),
                    funds_reserve_command(saga, asset=asset, amount=amount, order=order),
                ]
            )
    except IntegrityError:
        # A concurrent request with the same client order id won the unique constraint: answer with its order.
        existing = selectors.order_get_by_client_id(user_id=user_id, client_order_id=client_order_id)
        if existing is None:
            raise
        return existing, False
    return order, True


@dataclass(frozen=True)
class OrderPlan:
    """An order that passed every rule: as it would be stored, and what portfolio_svc would lock for it."""

    pair: Symbol
    time_in_force: str | None
    quantity: Decimal | None
    price: Decimal | None
    quote_order_qty: Decimal | None
    asset: str
    amount: Decimal


def order_check(
    *,
    symbol: str,
    side: str,
    type_: str,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    time_in_force: str | None = None,
    quote_order_qty: Decimal | None = None,
) -> OrderPlan:
    """Every rule a placement checks (the symbol, the shape of its type, the filters), with nothing written: what
    order_place stores, and what Binance's POST /api/v3/order/test answers."""
    pair = selectors.symbol_get(symbol=symbol) if isinstance(symbol, str) else None
    if pair is None or not pair.is_trading:
        raise ApplicationError("Invalid symbol.", code=filters.BAD_SYMBOL, details={"symbol": str(symbol)[:32]})
    time_in_force = filters.validate_shape(
        side=side,
        type_=type_,
        time_in_force=time_in_force,
        quantity=quantity,
        price=price,
        quote_order_qty=quote_order_qty,
    )
    asset, amount = _reservation(
        pair, side=side, type_=type_, quantity=quantity, price=price, quote_order_qty=quote_order_qty
    )
    # On the symbol's grids every value has at most 8 decimals: stored, published and answered alike.
    quantity, price, quote_order_qty, amount = (
        None if v is None else v.quantize(EIGHT_PLACES) for v in (quantity, price, quote_order_qty, amount)
    )
    return OrderPlan(pair, time_in_force, quantity, price, quote_order_qty, asset, amount)


def _reservation(
    pair: Symbol,
    *,
    side: str,
    type_: str,
    quantity: Decimal | None,
    price: Decimal | None,
    quote_order_qty: Decimal | None,
) -> tuple[str, Decimal]:
    """Check the filters and say what portfolio_svc must lock: (asset, amount)."""
    if price is not None:
        filters.check_price(pair, price)
    if quantity is not None:
        filters.check_quantity(pair, quantity)

    if type_ == OrderType.LIMIT:
        notional = quantity * price
        filters.check_notional(pair, notional)
        if side == Side.BUY:
            return pair.quote_asset, _up(notional)
        return pair.base_asset, quantity

    if quote_order_qty is not None:  # MARKET BUY spending at most this much quote asset
        if quote_order_qty != quote_order_qty.quantize(EIGHT_PLACES):
            raise ApplicationError(
                "Precision is over the maximum defined for this asset.",
                code="-1111",
                details={"parameter": "quoteOrderQty"},
            )
        filters.check_notional(pair, quote_order_qty)
        return pair.quote_asset, quote_order_qty

    # The one read a placement may need: the price moves, so it is never cached.
    last = LastTrade.objects.filter(symbol_id=pair.symbol).values_list("price", flat=True).first()
    if last is not None:
        filters.check_notional(pair, quantity * last)
    if side == Side.SELL:
        return pair.base_asset, quantity
    if last is None:
        raise ApplicationError(
            f"No market price is known for {pair.symbol} yet: a MARKET BUY cannot be reserved. "
            "Retry when trades arrive, or place a LIMIT order.",
            code=filters.NEW_ORDER_REJECTED,
            details={"symbol": pair.symbol},
        )
    return pair.quote_asset, _up(quantity * last * (1 + settings.ORDER_MARKET_BUY_BUFFER))


def _up(amount: Decimal) -> Decimal:
    return amount.quantize(EIGHT_PLACES, rounding=ROUND_UP)
