"""The streams server's Kafka side: one consumer thread per process reads market-data, order-events and
balance-events and hands each polled batch to the asyncio loop.

A broadcast reader, not a consumer group's member: each process joins a group of its own
(`analytics_svc.streams.<random>`), so every process gets every event; it starts at the latest offset (a stream is
live, it does not replay) and never commits. Events no stream needs are skipped from their ce_type header, unparsed.
The topics are granted to analytics_svc by common/topics.py's READERS table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings

from common import namespace
from common.consumers.base import _ce_type
from common.events import Envelope, EventError
from common.kafka import client_config
from streams.user import BALANCE_TYPES, ORDER_TYPES

logger = logging.getLogger(__name__)

WANTED = frozenset({"trade", *ORDER_TYPES, *BALANCE_TYPES})


def read_topics() -> list[str]:
    """The logical topics the streams server reads (settings.PLATFORM_READERS names this function)."""
    return [settings.MARKET_DATA_TOPIC, settings.ORDER_EVENTS_TOPIC, settings.BALANCE_EVENTS_TOPIC]


def reader_config(group_suffix: str | None = None) -> dict[str, object]:
    return {
        **client_config(),  # analytics_svc's principal: its ACLs let it read exactly these topics
        "group.id": namespace.group(f"{settings.SERVICE_NAME}.streams.{group_suffix or uuid.uuid4().hex[:12]}"),
        "auto.offset.reset": "latest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "client.id": f"{settings.SERVICE_NAME}-streams",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        # Small fetches go at once: a stream's latency is the point.
        "fetch.wait.max.ms": 50,
    }


class EventReader(threading.Thread):
    """Polls Kafka and calls `deliver(envelopes)` on the loop with each batch (in partition order)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[Envelope]], None],
        *,
        topics: list[str] | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.2,
        on_failure: Callable[[], None] | None = None,
    ):
        super().__init__(name="streams-kafka-reader", daemon=True)
        self.loop = loop
        self.deliver = deliver
        self.topics = topics or read_topics()
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.on_failure = on_failure  # called on the loop when the reader dies: a server without events is no use
        self.assigned = threading.Event()  # the group gave this process its partitions: events flow from here
        self.failed: BaseException | None = None
        self.received = 0
        self.skipped = 0
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        consumer = None
        try:
            consumer = Consumer(reader_config())
            consumer.subscribe([namespace.topic(t) for t in self.topics], on_assign=self._on_assign)
            logger.info("streams reader started", extra={"topics": self.topics})
            while not self._stopping.is_set():
                # One message waited for, then what is already fetched: consume(n, timeout) alone would hold a lone
                # trade until n arrived or the timeout passed.
                first = consumer.poll(self.poll_timeout)
                if first is None:
                    continue
                batch = self._envelopes([first, *consumer.consume(self.batch_size - 1, 0)])
                if batch:
                    try:
                        self.loop.call_soon_threadsafe(self.deliver, batch)
                    except RuntimeError:  # the loop closed: the server is stopping
                        break
        except Exception as exc:  # a fatal Kafka error or a bug: logged, and the server stops (to be restarted)
            self.failed = exc
            logger.exception("streams reader failed")
            if self.on_failure is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self.loop.call_soon_threadsafe(self.on_failure)
        finally:
            if consumer is not None:
                consumer.close()
            logger.info("streams reader stopped", extra={"received": self.received, "skipped": self.skipped})

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition at its end now, not when the fetcher gets to resolving "latest": once `assigned` is
        set, every event written afterwards is delivered (what /readyz, the tests and the benchmark wait for)."""
        for tp in partitions:
            tp.offset = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
        consumer.assign(partitions)
        self.assigned.set()

    def _envelopes(self, messages: list[Message]) -> list[Envelope]:
        out = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    if err.fatal():
                        raise KafkaException(err)
                    logger.warning("streams reader error", extra={"error": str(err)})
                continue
            self.received += 1
            declared = _ce_type(msg)
            if declared is not None and declared not in WANTED:
                self.skipped += 1
                continue
            try:
                envelope = Envelope.from_json(msg.value())
            except EventError as exc:
                self.skipped += 1  # the consumers dead-letter it; a stream just does not show it
                logger.warning("streams reader skipped a message", extra={"error": str(exc)[:300]})
                continue
            if envelope.type in WANTED:
                out.append(envelope)
            else:
                self.skipped += 1
        return out
