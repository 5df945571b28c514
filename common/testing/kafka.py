"""Reading and writing real topics in tests."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
    ).values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(names)).values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0, "messages were not delivered within 30s"


def read_topic(bootstrap: str, topic: str, *, expected: int, timeout: float = 30.0) -> list[Message]:
    """Every message on the topic from the beginning, waiting until at least `expected` arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
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
