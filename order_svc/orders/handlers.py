"""order_svc's consumers and their handlers: saga replies on balance-events, the fill engine on market-data."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings

from common.consumers.base import ConsumerSpec, PermanentError
from common.events import Envelope
from orders.services import SagaReply, Trade, saga_replies_apply, trades_apply

BALANCE_RESERVED = "balance.reserved"
BALANCE_RESERVATION_FAILED = "balance.reservation_failed"
# The balance-events types the saga reads; the others (settled, released, credited) are skipped unparsed.
SAGA_REPLY_TYPES = frozenset({BALANCE_RESERVED, BALANCE_RESERVATION_FAILED})


def handle_balance_events(envelopes: list[Envelope]) -> None:
    """A Kafka batch of portfolio_svc's replies to reserve_funds, applied at once (the runner holds its transaction)."""
    saga_replies_apply(replies=[_reply(e) for e in envelopes])


def _reply(envelope: Envelope) -> SagaReply:
    data = envelope.data
    ids = {"saga_id": data["saga_id"], "order_id": data["order_id"], "cause": envelope}
    if envelope.type == BALANCE_RESERVED:
        try:
            amount = Decimal(data["amount"])
        except (InvalidOperation, TypeError):
            raise PermanentError(f"{envelope.type} {envelope.id}: amount {data['amount']!r} is no decimal") from None
        return SagaReply(**ids, reserved=True, asset=_text(envelope, "asset"), amount=amount)
    return SagaReply(**ids, reserved=False, reason=_text(envelope, "reason"))


def _text(envelope: Envelope, key: str) -> str:
    """A text the saga stores (in the order's reason or the saga's history): PostgreSQL takes no NUL in either."""
    value = envelope.data[key]
    if "\x00" in value:
        raise PermanentError(f"{envelope.type} {envelope.id}: {key} holds a NUL character, which cannot be stored")
    return value


def handle_trades(envelopes: list[Envelope]) -> None:
    """A Kafka batch of market-data, applied at once (the runner holds its transaction)."""
    trades_apply(trades=[Trade.from_data(e.data) for e in envelopes if e.type == "trade"])


def saga_replies_spec(*, topic: str, name: str = "balance-events") -> ConsumerSpec:
    return ConsumerSpec(name=name, topics=[topic], batch_handler=handle_balance_events, types=SAGA_REPLY_TYPES)


def fill_engine_spec(*, topic: str, name: str = "market-data") -> ConsumerSpec:
    # No inbox: the last trade id per symbol, written with the fills, is the dedup mark.
    return ConsumerSpec(name=name, topics=[topic], batch_handler=handle_trades, inbox=False)


CONSUMERS = [
    saga_replies_spec(topic=settings.BALANCE_EVENTS_TOPIC),
    fill_engine_spec(topic=settings.MARKET_DATA_TOPIC),
]
