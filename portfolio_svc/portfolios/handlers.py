"""portfolio_svc's consumers: the one registry of handlers, and the consumer groups that run them."""

from __future__ import annotations

import uuid
from datetime import datetime

from common.consumers.base import ConsumerSpec, PermanentError
from common.events import Envelope
from common.topics import Topic
from portfolios.amounts import InvalidAmount, parse_amount
from portfolios.services import (
    InsufficientFunds,
    SettlementError,
    fill_settle,
    portfolio_create_default,
    prices_apply_trades,
    reservation_release,
    reservation_release_for_order,
    reservation_reserve,
)


def _user_id(envelope: Envelope) -> uuid.UUID:
    try:
        return uuid.UUID(str(envelope.data["user_id"]))
    except ValueError:
        # Users are identified by UUIDs platform-wide: retrying cannot make this event valid.
        raise PermanentError(f"{envelope.type}: user_id {envelope.data['user_id']!r} is not a UUID") from None


def handle_user_registered(envelope: Envelope) -> None:
    portfolio_create_default(user_id=_user_id(envelope))


def handle_reserve_funds(envelope: Envelope) -> None:
    data = envelope.data
    reservation_reserve(
        order_id=data["order_id"],
        saga_id=data["saga_id"],
        user_id=_user_id(envelope),
        asset=data["asset"],
        amount=data["amount"],
    )


def handle_release_funds(envelope: Envelope) -> None:
    data = envelope.data
    reservation_release(
        order_id=data["order_id"], saga_id=data["saga_id"], user_id=_user_id(envelope), reason=data.get("reason", "")
    )


def handle_order_filled(envelope: Envelope) -> None:
    data = envelope.data
    try:
        fill_settle(
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
        )
    except (SettlementError, InsufficientFunds, InvalidAmount) as exc:
        # The same fill will fail the same way: straight to the DLQ, where an operator can replay it.
        raise PermanentError(f"fill {data['fill_id']}: {exc}") from exc


def handle_order_cancelled(envelope: Envelope) -> None:
    reservation_release_for_order(order_id=envelope.data["order_id"])


def handle_trades(envelopes: list[Envelope]) -> None:
    """A batch of market-data events at once: only the newest trade per symbol is written."""
    prices_apply_trades(trades=[e.data for e in envelopes if e.type == "trade"])


HANDLERS = {
    "user.registered": handle_user_registered,
    "portfolio.reserve_funds": handle_reserve_funds,
    "portfolio.release_funds": handle_release_funds,
    "order.filled": handle_order_filled,
    "order.cancelled": handle_order_cancelled,
}


def _only(*types: str) -> dict:
    return {t: HANDLERS[t] for t in types}


def user_events_spec(*, topic: str = Topic.USER_EVENTS) -> ConsumerSpec:
    return ConsumerSpec(name="user-events", topics=[topic], handlers=_only("user.registered"))


def portfolio_commands_spec(*, topic: str = Topic.PORTFOLIO_COMMANDS) -> ConsumerSpec:
    return ConsumerSpec(
        name="portfolio-commands",
        topics=[topic],
        handlers=_only("portfolio.reserve_funds", "portfolio.release_funds"),
    )


def order_events_spec(*, topic: str = Topic.ORDER_EVENTS) -> ConsumerSpec:
    return ConsumerSpec(name="order-events", topics=[topic], handlers=_only("order.filled", "order.cancelled"))


def market_data_spec(*, topic: str = Topic.MARKET_DATA) -> ConsumerSpec:
    # No inbox: prices are ordered by (trade time, trade id), so a redelivered trade is a no-op anyway.
    return ConsumerSpec(name="market-data", topics=[topic], batch_handler=handle_trades, inbox=False)


CONSUMERS = [user_events_spec(), portfolio_commands_spec(), order_events_spec(), market_data_spec()]
