"""The broker's ACLs: each service's principal writes only the topics it owns and reads only those it consumes.

Real SCRAM logins against the shared broker, in this run's namespace (the ACLs of its topics were made with it).
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from common import kafka_auth, namespace, topics
from common.kafka import client_config, producer_config
from common.testing.kafka import end_offsets
from tests.e2e.conftest import manage_all

KAFKA = f"127.0.0.1:{manage_all.infra.KAFKA_PORT}"


def _produce(principal: str, topic: str, **overrides) -> KafkaError | None:
    """Produce one message as `principal`; the delivery error (None: written)."""
    config = producer_config(KAFKA, principal=principal, **{"message.timeout.ms": 10000, **overrides})
    producer = Producer(config)
    outcome: list[KafkaError | None] = []
    producer.produce(namespace.topic(topic), key=b"acl", value=b"{}", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    assert outcome, f"no delivery report for {topic} as {principal} within 15 s"
    return outcome[0]


def _read_error(principal: str, topic: str) -> KafkaError | None:
    """Subscribe as `principal` in one of its own groups; the first error the broker answers (None: readable)."""
    consumer = Consumer(
        {
            **client_config(KAFKA, principal=principal),
            "group.id": namespace.group(f"{principal}.acl-test-{uuid.uuid4().hex[:8]}"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([namespace.topic(topic)])
    try:
        for _ in range(20):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None and msg.error().code() != KafkaError._PARTITION_EOF:
                return msg.error()
            if consumer.assignment():
                return None
        pytest.fail(f"{principal} got neither an assignment nor an error on {topic} in 10 s")
    finally:
        consumer.close()


def test_portfolio_svc_cannot_produce_order_filled_but_can_produce_its_own_balance_events():
    before = end_offsets(KAFKA, topics.Topic.ORDER_EVENTS)

    refused = _produce("portfolio_svc", topics.Topic.ORDER_EVENTS)

    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert end_offsets(KAFKA, topics.Topic.ORDER_EVENTS) == before  # nothing was written
    assert _produce("portfolio_svc", topics.Topic.BALANCE_EVENTS) is None
    assert _produce("order_svc", topics.Topic.ORDER_EVENTS) is None  # the owner may


@pytest.mark.parametrize("principal", sorted(topics.CONSUMES))
def test_every_principal_writes_exactly_the_topics_the_table_gives_it(principal):
    allowed = set(topics.produces(principal))
    for topic in topics.all_topics():
        error = _produce(principal, topic)
        if topic in allowed:
            assert error is None, f"{principal} may write {topic}: {error}"
        else:
            assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (principal, topic)


def test_a_service_reads_what_it_consumes_and_nothing_else():
    assert _read_error("transaction_svc", topics.Topic.ORDER_EVENTS) is None
    refused = _read_error("transaction_svc", topics.Topic.PORTFOLIO_COMMANDS)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Nor in another service's consumer group, on a topic it may read itself.
    consumer = Consumer(
        {
            **client_config(KAFKA, principal="analytics_svc"),
            "group.id": namespace.group("order_svc.market-data"),
        }
    )
    consumer.subscribe([namespace.topic(topics.Topic.MARKET_DATA)])
    try:
        errors = [m.error() for m in (consumer.poll(0.5) for _ in range(20)) if m is not None and m.error()]
    finally:
        consumer.close()
    assert any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors), errors


@pytest.mark.parametrize(
    "security",
    [
        {"security.protocol": "PLAINTEXT"},  # no login at all
        {"sasl.password": "order_svc-local"},  # a wrong password
        {"sasl.username": "nobody", "sasl.password": "x"},  # an unknown user
    ],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
def test_the_broker_refuses_a_client_that_does_not_log_in(security):
    config = {**client_config(KAFKA, principal="order_svc"), **security, "socket.timeout.ms": 5000}
    config = {
        k: v
        for k, v in config.items()
        if not (security == {"security.protocol": "PLAINTEXT"} and k.startswith("sasl."))
    }
    producer = Producer({**config, "message.timeout.ms": 5000})
    outcome: list[KafkaError | None] = []
    producer.produce(
        namespace.topic(topics.Topic.ORDER_EVENTS), value=b"{}", on_delivery=lambda e, m: outcome.append(e)
    )
    producer.flush(10)
    assert outcome and outcome[0] is not None
    with pytest.raises(KafkaException):
        Producer(config).list_topics(timeout=3)


def test_the_local_secrets_are_the_brokers_and_private():
    for principal in [*topics.CONSUMES, kafka_auth.ADMIN]:
        secret = manage_all.infra.credentials.path("kafka", principal)
        assert secret.stat().st_mode & 0o777 == 0o600
    config = manage_all.infra.Kafka().config
    assert config.stat().st_mode & 0o777 == 0o600  # it holds the admin's password
    text = config.read_text()
    assert "PLAINTEXT://" not in text.split("listener.security.protocol.map")[0]
    assert "allow.everyone.if.no.acl.found=false" in text
