"""portfolio_svc's consumers: the one registry of handlers, and the consumer groups that run them.

The order path's consumers (portfolio-commands, order-events, market-data) are batch handlers: each turns a
Kafka batch's envelopes into the service's commands and hands them to one set-based service call, inside
the batch's transaction. A poison event raises PermanentError, naming that event; the runner then handles
the batch again one event at a time, so only that event is dead-lettered.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from common.consumers.base import ConsumerSpec, PermanentError
from common.events import Envelope
from common.topics import Topic
from portfolios.amounts import InvalidAmount, parse_amount
from portfolios.services import (
    FillSettle,
    InsufficientFunds,
    OrderClose,
    ReleaseFunds,
    ReserveFunds,
    SettlementError,
    portfolio_create_default,
    prices_apply_trades,
    reservations_apply,
    settlements_apply,
)

PORTFOLIO_COMMANDS = frozenset({"portfolio.reserve_funds", "portfolio.release_funds"})
ORDER_EVENTS = frozenset({"order.filled", "order.cancelled"})  # order.created/accepted/rejected: skipped
MARKET_DATA = frozenset({"trade"})


def _user_id(envelope: Envelope) -> uuid.UUID:
    try:
        return uuid.UUID(str(envelope.data["user_id"]))
    except ValueError:
        # Users are identified by UUIDs platform-wide: retrying cannot make this event valid.
        raise PermanentError(f"{envelope.type}: user_id {envelope.data['user_id']!r} is not a UUID") from None


def handle_user_registered(envelope: Envelope) -> None:
    portfolio_create_default(user_id=_user_id(envelope))


def _portfolio_command(envelope: Envelope) -> ReserveFunds | ReleaseFunds:
    data = envelope.data
    if envelope.type == "portfolio.reserve_funds":
        return ReserveFunds(
            order_id=data["order_id"],
            saga_id=data["saga_id"],
            user_id=_user_id(envelope),
            asset=data["asset"],
            amount=data["amount"],
            cause=envelope,
        )
    return ReleaseFunds(
        order_id=data["order_id"],
        saga_id=data["saga_id"],
        user_id=_user_id(envelope),
        reason=data.get("reason", ""),
        cause=envelope,
    )


def handle_portfolio_commands(envelopes: list[Envelope]) -> None:
    """portfolio.reserve_funds and portfolio.release_funds of one batch, applied in order with one service call."""
    reservations_apply([_portfolio_command(e) for e in envelopes])


def _order_event(envelope: Envelope) -> FillSettle | OrderClose:
    data = envelope.data
    if envelope.type == "order.cancelled":
        return OrderClose(order_id=data["order_id"], cause=envelope)
    try:
        return FillSettle(
            fill_id=data["fill_id"],
            order_id=data["order_id"],
            user_id=_user_id(envelope),
            side=data["side"],
            base_asset=data["base_asset"],
            quote_asset=data["quote_asset"],
            qty=parse_amount(data["qty"]),
            quote_qty=parse_amount(data["quote_qty"]),
            fee=parse_amount(data["fee"]),
            fee_asset=data["fee_asset"],
            order_status=data["status"],
            executed_at=datetime.fromisoformat(data["executed_at"]),
            cause=envelope,
        )
    except InvalidAmount as exc:
        raise PermanentError(f"fill {data['fill_id']}: {exc}") from exc


def handle_order_events(envelopes: list[Envelope]) -> None:
    """order.filled and order.cancelled of one batch: fills settled, closed orders released, with one service call."""
    events = [_order_event(e) for e in envelopes]
    try:
        settlements_apply(events)
    except (SettlementError, InsufficientFunds) as exc:
        fill_id = exc.details.get("fill_id")
        if fill_id is None:
            raise  # a closed order whose release fails: retried, then dead-lettered, as any other error
        # The same fill will fail the same way: straight to the DLQ, where an operator can replay it.
        raise PermanentError(f"fill {fill_id}: {exc}") from exc


def handle_trades(envelopes: list[Envelope]) -> None:
    """A batch of market-data events at once: only the newest trade per symbol is written."""
    prices_apply_trades(trades=[e.data for e in envelopes if e.type == "trade"])


HANDLERS = {"user.registered": handle_user_registered}


def user_events_spec(*, topic: str = Topic.USER_EVENTS) -> ConsumerSpec:
    # Low volume (one event per sign-up): handled one event at a time.
    return ConsumerSpec(name="user-events", topics=[topic], handlers=HANDLERS)


def portfolio_commands_spec(*, topic: str = Topic.PORTFOLIO_COMMANDS) -> ConsumerSpec:
    return ConsumerSpec(
        name="portfolio-commands", topics=[topic], batch_handler=handle_portfolio_commands, types=PORTFOLIO_COMMANDS
    )


def order_events_spec(*, topic: str = Topic.ORDER_EVENTS) -> ConsumerSpec:
    return ConsumerSpec(name="order-events", topics=[topic], batch_handler=handle_order_events, types=ORDER_EVENTS)


def market_data_spec(*, topic: str = Topic.MARKET_DATA) -> ConsumerSpec:
    # No inbox: prices are ordered by (trade time, trade id), so a redelivered trade is a no-op anyway.
    return ConsumerSpec(name="market-data", topics=[topic], batch_handler=handle_trades, types=MARKET_DATA, inbox=False)


CONSUMERS = [user_events_spec(), portfolio_commands_spec(), order_events_spec(), market_data_spec()]
