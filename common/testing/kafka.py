"""Reading and writing real topics in tests, by logical name: the run's namespace is applied here.

The tests' own clients act as the broker's admin (they play any service's part: publish its events, read its
topics); the code under test runs as its service's principal.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from common import namespace
from common.kafka import ADMIN, admin_client, client_config


def create_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    admin = admin_client(bootstrap)
    for future in admin.create_topics(
        [NewTopic(namespace.topic(n), num_partitions=partitions, replication_factor=1) for n in names]
    ).values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, *names: str) -> None:
    admin = admin_client(bootstrap)
    for future in admin.delete_topics([namespace.topic(n) for n in names]).values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer(client_config(bootstrap, principal=ADMIN, **{"enable.idempotence": True, "acks": "all"}))
    for key, value in messages:
        producer.produce(namespace.topic(topic), key=key, value=value)
    assert producer.flush(30) == 0, "messages were not delivered within 30s"


def read_topic(bootstrap: str, topic: str, *, expected: int, timeout: float = 30.0) -> list[Message]:
    """Every message on the topic from the beginning, waiting until at least `expected` arrived."""
    consumer = Consumer(
        {
            **admin_config(bootstrap),
            "group.id": namespace.group(f"test-reader-{uuid.uuid4().hex}"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([namespace.topic(topic)])
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    received.append(msg)
            if len(received) >= expected:
                # a short grace period shows whether more than expected arrive
                for msg in consumer.consume(1000, 1.0):
                    if msg.error() is None:
                        received.append(msg)
                break
    finally:
        consumer.close()
    return received


def _reader(bootstrap: str) -> Consumer:
    return Consumer(
        {
            **admin_config(bootstrap),
            "group.id": namespace.group(f"test-reader-{uuid.uuid4().hex}"),
            "enable.auto.commit": False,
        }
    )


def end_offsets(bootstrap: str, topic: str, *, ns: str | None = None) -> dict[int, int]:
    """partition -> the offset the next message written to the topic will get (ns: another run's topic)."""
    topic = namespace.topic(topic, ns)
    consumer = _reader(bootstrap)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def read_since(
    bootstrap: str, topic: str, start: dict[int, int], timeout: float = 30.0, *, ns: str | None = None
) -> list[Message]:
    """Every message written to the topic after `start`, up to its end now (shared topic: others write too)."""
    end = end_offsets(bootstrap, topic, ns=ns)
    topic = namespace.topic(topic, ns)
    pending = {p for p, offset in start.items() if end[p] > offset}
    consumer = _reader(bootstrap)
    consumer.assign([TopicPartition(topic, p, start[p]) for p in pending])
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            received.append(msg)
            if msg.offset() >= end[msg.partition()] - 1:
                pending.discard(msg.partition())
    finally:
        consumer.close()
    assert not pending, f"partitions {pending} of {topic} were not read to their end within {timeout}s"
    return received


def admin_config(bootstrap: str) -> dict[str, object]:
    """A test client's base configuration: the broker's admin."""
    return client_config(bootstrap, principal=ADMIN)
