"""analytics_svc's consumers and their handlers: market-data trades fold into candles."""

from __future__ import annotations

from django.conf import settings

from candles.services import trades_apply
from candles.trades import Trade
from common.consumers.base import ConsumerSpec
from common.events import Envelope


def handle_trades(envelopes: list[Envelope]) -> None:
    """A Kafka batch of `trade` events, folded at once (the runner holds its transaction)."""
    trades_apply(trades=[Trade.from_data(e.data) for e in envelopes if e.type == "trade"])


def candles_spec(*, topic: str, name: str = "candles") -> ConsumerSpec:
    # No inbox: the last applied trade id per symbol is the dedup mark, written with the candles.
    return ConsumerSpec(name=name, topics=[topic], batch_handler=handle_trades, inbox=False)


CONSUMERS = [candles_spec(topic=settings.MARKET_DATA_TOPIC, name=settings.CANDLES_CONSUMER_NAME)]
