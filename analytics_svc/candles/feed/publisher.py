"""Publishes trades to Kafka: one `trade` envelope per trade, key = symbol, idempotent producer."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, Message, Producer

from candles.trades import Trade
from common import namespace
from common.events import Envelope
from common.kafka import producer_config

logger = logging.getLogger(__name__)

SOURCE = "analytics_svc"


class PublishError(Exception):
    """Kafka did not acknowledge every trade."""


class TradePublisher:
    """The feed owns no database state, so it writes straight to Kafka (no outbox) with acks=all."""

    def __init__(self, *, bootstrap: str, topic: str):
        self.topic = namespace.topic(topic)  # this run's physical topic
        self.producer = Producer(
            producer_config(bootstrap, **{"linger.ms": 20, "queue.buffering.max.messages": 200_000})
        )
        self.sent = 0
        self.failed = 0
        self.last_error: KafkaError | None = None

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            self.last_error = err

    def publish(self, trade: Trade) -> None:
        envelope = Envelope.new("trade", source=SOURCE, subject=trade.symbol, data=trade.to_data())
        value, key = envelope.to_json(), trade.symbol.encode()
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.1)  # the local queue is full: let deliveries drain it
        self.sent += 1
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining or self.failed:
            raise PublishError(
                f"{remaining} trade(s) undelivered, {self.failed} failed (last error: {self.last_error})"
            )


def stream(trades: Iterable[Trade], publisher: TradePublisher, *, count: int | None = None) -> int:
    """Publish trades until the source ends or `count` were sent; returns how many were sent."""
    sent = 0
    try:
        for trade in itertools.islice(trades, count):
            publisher.publish(trade)
            sent += 1
            if sent % 10_000 == 0:
                logger.info("trades published", extra={"sent": sent, "topic": publisher.topic})
    finally:
        publisher.flush()
    return sent
