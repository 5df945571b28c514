"""transaction_svc's consumers and their handler: order-events become ledger rows and event-log rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from common.consumers.base import ConsumerSpec, PermanentError
from common.events import Envelope
from common.exceptions import ApplicationError
from transactions.models import TransactionEventType
from transactions.services import FillToBook, OrderEventToLog, order_events_record


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PermanentError(f"user_id {value!r} is not a UUID") from None


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PermanentError(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise PermanentError(f"{value!r} has no time zone")
    return moment


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise PermanentError(f"{value!r} is not a decimal") from None


def _order_filled(envelope: Envelope) -> FillToBook:
    d = envelope.data
    return FillToBook(
        event_id=envelope.id,
        fill_id=d["fill_id"],
        order_id=d["order_id"],
        user_id=_uuid(d["user_id"]),
        symbol=d["symbol"],
        base_asset=d["base_asset"],
        quote_asset=d["quote_asset"],
        side=d["side"],
        price=_decimal(d["price"]),
        qty=_decimal(d["qty"]),
        quote_qty=_decimal(d["quote_qty"]),
        fee=_decimal(d["fee"]),
        fee_asset=d["fee_asset"],
        order_status=d["status"],
        executed_at=_time(d["executed_at"]),
        occurred_at=_time(envelope.time),
        data=d,
        is_maker=d.get("is_maker"),
        trade_id=d.get("trade_id"),
        cause=envelope,
    )


def _order_ended(envelope: Envelope) -> OrderEventToLog:
    d = envelope.data
    return OrderEventToLog(
        event_id=envelope.id,
        event_type=envelope.type,
        order_id=d["order_id"],
        user_id=_uuid(d["user_id"]),
        symbol=d["symbol"],
        status=d.get("status") or "",
        reason=d.get("reason") or "",
        data=d,
        occurred_at=_time(envelope.time),
    )


# The one registry: what each handled type becomes. order.created and order.accepted are not listed, so the
# consumer skips them from the ce_type header without parsing them.
READERS: dict[str, Callable[[Envelope], FillToBook | OrderEventToLog]] = {
    TransactionEventType.ORDER_FILLED.value: _order_filled,
    TransactionEventType.ORDER_CANCELLED.value: _order_ended,
    TransactionEventType.ORDER_REJECTED.value: _order_ended,
}


def handle_order_events(envelopes: list[Envelope]) -> None:
    """Book the fills and log the ended orders of one batch, in offset order, with a constant number of statements.

    Every event is read and checked before anything is written: one that cannot be booked raises
    PermanentError, the batch is replayed one event at a time, and only that event is dead-lettered.
    """
    events = [READERS[envelope.type](envelope) for envelope in envelopes]
    try:
        order_events_record(events)
    except ApplicationError as exc:  # an event itself is wrong: retrying cannot help
        raise PermanentError(exc.message) from exc


def order_events_spec(*, topic: str, name: str = "order-events") -> ConsumerSpec:
    # The inbox makes each event id once-only; recorded_fills makes each fill once-only across event ids.
    return ConsumerSpec(name=name, topics=[topic], batch_handler=handle_order_events, types=frozenset(READERS))


CONSUMERS = [order_events_spec(topic=settings.ORDER_EVENTS_TOPIC, name=settings.ORDER_EVENTS_CONSUMER_NAME)]
