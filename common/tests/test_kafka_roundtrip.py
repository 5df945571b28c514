"""The local broker is a real Kafka: a message produced with confluent-kafka is consumed back."""

import uuid

from confluent_kafka import Consumer, Producer

from common import namespace
from common.kafka import admin_client, client_config, producer_config


def test_a_message_produced_to_the_broker_is_consumed_back(kafka_bootstrap, kafka_topic):
    value = uuid.uuid4().hex.encode()
    producer = Producer(producer_config(kafka_bootstrap))
    delivered = []
    producer.produce(
        namespace.topic(kafka_topic), key=b"k1", value=value, on_delivery=lambda err, msg: delivered.append(err)
    )
    assert producer.flush(30) == 0
    assert delivered == [None]

    consumer = Consumer(
        {
            **client_config(kafka_bootstrap),  # as this project's principal: a scratch topic of its run
            "group.id": namespace.group(f"platform_common.roundtrip-{uuid.uuid4().hex}"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([namespace.topic(kafka_topic)])
    try:
        received = None
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                received = msg
                break
    finally:
        consumer.close()

    assert received is not None, "nothing came back from the broker within 30s"
    assert (received.key(), received.value()) == (b"k1", value)


def test_every_platform_topic_exists_in_the_runs_namespace(kafka_bootstrap):
    from common.topics import all_topics

    existing = admin_client(kafka_bootstrap).list_topics(timeout=10).topics

    assert {namespace.topic(t) for t in all_topics()} <= set(existing)
    assert len(existing[namespace.topic("order-events")].partitions) >= 3
