"""The order-events consumer against the real broker: fills booked once, events logged, bad fills dead-lettered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from django.conf import settings

from common import namespace
from common.consumers.base import ConsumerRunner
from common.consumers.models import DeadLetter
from common.kafka import ADMIN, producer_config
from common.outbox.models import OutboxMessage
from common.testing.kafka import produce
from common.testing.outbox import published
from common.topics import dlq
from transactions.handlers import CONSUMERS, handle_order_events, order_events_spec
from transactions.models import Transaction, TransactionEvent
from transactions.tests.factories import order_event

pytestmark = pytest.mark.django_db(transaction=True)

SERVICE_DIR = Path(__file__).resolve().parents[2]


def _send(bootstrap: str, topic: str, *envelopes) -> None:
    produce(bootstrap, topic, [(e.subject.encode(), e.to_json()) for e in envelopes])


UNREAD = ("order.created", "order.accepted")


def _produce_with_headers(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes, list]]) -> None:
    producer = Producer(producer_config(bootstrap, principal=ADMIN))  # plays order_svc's part
    for key, value, headers in messages:
        producer.produce(namespace.topic(topic), key=key, value=value, headers=headers)
    assert producer.flush(30) == 0


def _run(topic: str, *, expect: int) -> ConsumerRunner:
    # A group of its own, so the test never joins (and rebalances) a running order-events consumer.
    runner = ConsumerRunner(order_events_spec(topic=topic, name=f"order-events-test-{uuid.uuid4().hex[:8]}"))
    runner.run(max_messages=expect, idle_exit_s=5)
    return runner


def test_the_service_declares_the_order_events_consumer():
    (spec,) = CONSUMERS

    assert (spec.name, spec.topics, spec.inbox) == ("order-events", ["order-events"], True)
    assert spec.types == {"order.filled", "order.cancelled", "order.rejected"}
    assert spec.batch_handler is handle_order_events
    assert not spec.handles("order.created") and not spec.handles("order.accepted")
    assert settings.PLATFORM_CONSUMERS == "transactions.handlers.CONSUMERS"


def test_a_redelivered_order_filled_records_one_transaction(kafka_bootstrap, kafka_topic):
    fill = order_event("order.filled")
    # order_svc re-sending the same fill under a new event id (not an outbox retry) is the same fill too.
    resent = order_event("order.filled", **fill.data)

    _send(kafka_bootstrap, kafka_topic, fill, fill, resent)
    runner = _run(kafka_topic, expect=3)

    assert runner.stats.handled == 2 and runner.stats.duplicates == 1
    row = Transaction.objects.get(fill_id=fill.data["fill_id"])
    assert str(row.user_id) == fill.data["user_id"]
    assert list(TransactionEvent.objects.filter(order_id=fill.data["order_id"]).values_list("event_id", flat=True)) == [
        fill.id
    ]
    published = OutboxMessage.objects.filter(event_type="transaction.recorded", key=fill.data["user_id"])
    assert published.count() == 1


def test_cancelled_and_rejected_orders_are_logged_as_events_only(kafka_bootstrap, kafka_topic):
    cancelled = order_event("order.cancelled", status="EXPIRED", reason="IOC remainder")
    rejected = order_event("order.rejected")

    _send(kafka_bootstrap, kafka_topic, cancelled, rejected)
    _run(kafka_topic, expect=2)

    logged = TransactionEvent.objects.filter(order_id__in=[cancelled.subject, rejected.subject])
    assert sorted(logged.values_list("event_type", "status", "reason")) == [
        ("order.cancelled", "EXPIRED", "IOC remainder"),
        ("order.rejected", "", "insufficient balance"),
    ]
    assert Transaction.objects.count() == 0
    assert OutboxMessage.objects.filter(event_type="transaction.recorded").count() == 0


def test_a_fill_that_cannot_be_booked_goes_to_the_dlq_at_once_and_the_rest_is_booked(kafka_bootstrap, kafka_topic):
    bad = order_event("order.filled", user_id="not-a-uuid")
    good = order_event("order.filled")

    _send(kafka_bootstrap, kafka_topic, bad, good)
    runner = _run(kafka_topic, expect=2)

    letter = DeadLetter.objects.get(event_id=bad.id)
    assert (letter.attempts, letter.error) == (1, "permanent: user_id 'not-a-uuid' is not a UUID")
    assert runner.stats.dead_lettered == 1
    assert list(Transaction.objects.values_list("fill_id", flat=True)) == [good.data["fill_id"]]
    assert not TransactionEvent.objects.filter(event_id=bad.id).exists()


def test_a_batch_mixing_duplicates_poison_and_valid_events_has_each_valid_effect_once(kafka_bootstrap, kafka_topic):
    name = f"order-events-test-{uuid.uuid4().hex[:8]}"
    processed = order_event("order.filled")
    _send(kafka_bootstrap, kafka_topic, processed)
    ConsumerRunner(order_events_spec(topic=kafka_topic, name=name)).run(max_messages=1, idle_exit_s=5)
    fill = order_event("order.filled")
    resent = order_event("order.filled", **fill.data)  # the same fill under a new event id
    cancelled, rejected = order_event("order.cancelled"), order_event("order.rejected")
    not_a_user = order_event("order.filled", user_id="not-a-uuid")
    too_precise = order_event("order.filled", qty="0.0000000000000000001")
    _send(kafka_bootstrap, kafka_topic, fill, not_a_user, fill, processed, cancelled, too_precise, resent, rejected)
    # Types this consumer does not read are skipped from the header: these bodies would be dead-lettered if parsed.
    _produce_with_headers(kafka_bootstrap, kafka_topic, [(b"o", b"{", [("ce_type", t)]) for t in UNREAD])

    runner = ConsumerRunner(order_events_spec(topic=kafka_topic, name=name))
    stats = runner.run(max_messages=10, idle_exit_s=5)

    assert (stats.received, stats.skipped, stats.duplicates, stats.dead_lettered) == (10, 2, 2, 2)
    assert stats.handled == 4 and stats.retried_batches >= 1  # fill, cancelled, rejected, resent (a no-op)
    assert sorted(Transaction.objects.values_list("fill_id", flat=True)) == sorted(
        [processed.data["fill_id"], fill.data["fill_id"]]
    )
    assert sorted(TransactionEvent.objects.values_list("event_id", flat=True)) == sorted(
        [processed.id, fill.id, cancelled.id, rejected.id]
    )
    assert sorted(d["fill_id"] for d in published("transaction.recorded")) == sorted(
        [processed.data["fill_id"], fill.data["fill_id"]]
    )
    letters = DeadLetter.objects.order_by("event_id").values_list("event_id", "attempts", "error")
    assert sorted(letters) == sorted(
        [
            (not_a_user.id, 1, "permanent: user_id 'not-a-uuid' is not a UUID"),
            (too_precise.id, 1, "permanent: qty has more than 18 decimal places"),
        ]
    )
    assert OutboxMessage.objects.filter(topic=dlq(kafka_topic)).count() == 2


def _database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_the_consume_command_books_fills_and_stops_cleanly_on_sigterm(kafka_bootstrap, kafka_topic, tmp_path):
    fills = [order_event("order.filled") for _ in range(3)]
    _send(kafka_bootstrap, kafka_topic, *fills)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database, so this test sees what the process writes
        "ORDER_EVENTS_TOPIC": kafka_topic,
        "ORDER_EVENTS_CONSUMER_NAME": f"order-events-test-{uuid.uuid4().hex[:8]}",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "consume.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "consume", env["ORDER_EVENTS_CONSUMER_NAME"]],
            cwd=SERVICE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while Transaction.objects.count() < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    assert sorted(Transaction.objects.values_list("fill_id", flat=True)) == sorted(f.data["fill_id"] for f in fills)
    assert "received 3, handled 3, duplicates 0" in log.read_text()
