"""order_svc's consumers and their handlers: saga replies on balance-events, the fill engine on market-data."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from common.consumers.base import ConsumerSpec
from common.events import Envelope
from orders.services import Trade, saga_reservation_confirm, saga_reservation_fail, trades_apply


def handle_balance_reserved(envelope: Envelope) -> None:
    data = envelope.data
    saga_reservation_confirm(
        saga_id=data["saga_id"], order_id=data["order_id"], asset=data["asset"], amount=Decimal(data["amount"])
    )


def handle_balance_reservation_failed(envelope: Envelope) -> None:
    data = envelope.data
    saga_reservation_fail(saga_id=data["saga_id"], order_id=data["order_id"], reason=data["reason"])


# The one registry of this service's event handlers (balance-events types it does not list are skipped).
HANDLERS = {
    "balance.reserved": handle_balance_reserved,
    "balance.reservation_failed": handle_balance_reservation_failed,
}


def handle_trades(envelopes: list[Envelope]) -> None:
    """A Kafka batch of market-data, applied at once (the runner holds its transaction)."""
    trades_apply(trades=[Trade.from_data(e.data) for e in envelopes if e.type == "trade"])


def saga_replies_spec(*, topic: str, name: str = "balance-events") -> ConsumerSpec:
    return ConsumerSpec(name=name, topics=[topic], handlers=HANDLERS)


def fill_engine_spec(*, topic: str, name: str = "market-data") -> ConsumerSpec:
    # No inbox: the last trade id per symbol, written with the fills, is the dedup mark.
    return ConsumerSpec(name=name, topics=[topic], batch_handler=handle_trades, inbox=False)


CONSUMERS = [
    saga_replies_spec(topic=settings.BALANCE_EVENTS_TOPIC),
    fill_engine_spec(topic=settings.MARKET_DATA_TOPIC),
]
