"""Crashes and outages with real processes: a killed relay worker, a killed consumer, a stopped broker."""

from __future__ import annotations

import json
import signal
import sys
import time

import pytest
from django.db import transaction

from common.consumers.base import ConsumerRunner
from common.outbox import relay
from common.outbox.models import OutboxMessage
from common.outbox.services import publish
from common.testing.kafka import produce, read_topic
from common.tests.conftest import ROOT
from common.tests.handlers import effects_spec
from common.tests.models import Effect

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _assert_per_key_order_and_completeness(messages, count: int) -> None:
    first_seen: dict[str, tuple[bytes, int]] = {}
    for msg in messages:
        doc = json.loads(msg.value())
        first_seen.setdefault(doc["id"], (msg.key(), doc["data"]["seq"]))
    assert len(first_seen) == count
    by_key: dict[bytes, list[int]] = {}
    for key, seq in first_seen.values():
        by_key.setdefault(key, []).append(seq)
    for seqs in by_key.values():
        assert seqs == sorted(seqs), "an aggregate's events arrived out of order"


def test_a_worker_killed_before_it_relays_strands_nothing(kafka_bootstrap, kafka_topic, spawn, tmp_path):
    for chunk in range(10):  # 1,000 events in 10 commits, while no worker runs
        with transaction.atomic():
            for i in range(100):
                seq = chunk * 100 + i
                publish(kafka_topic, "test.pinged", f"k{seq % 13}", {"seq": seq})

    doomed = spawn("worker")
    time.sleep(1.0)
    doomed.kill(signal.SIGKILL)
    spawn("worker", "--beat", "--schedule", str(tmp_path / "beat"))
    _wait(
        lambda: not OutboxMessage.objects.filter(published_at__isnull=True).exists(),
        timeout=60,
        what="the new worker to relay every row",
    )

    messages = read_topic(kafka_bootstrap, kafka_topic, expected=1000)
    _assert_per_key_order_and_completeness(messages, 1000)
    runner = ConsumerRunner(effects_spec(kafka_topic), batch_size=300)
    runner.run(max_messages=len(messages), idle_exit_s=5)
    assert Effect.objects.count() == 1000
    assert Effect.objects.values("event_id").distinct().count() == 1000


def test_a_consumer_killed_mid_stream_loses_and_duplicates_nothing(kafka_bootstrap, kafka_topic, spawn):
    from common.events import Envelope

    events = [Envelope.new("test.pinged", source="tests", subject=f"k{i % 5}", data={"seq": i}) for i in range(3000)]
    produce(kafka_bootstrap, kafka_topic, [(e.subject.encode(), e.to_json()) for e in events])

    first = spawn("consume", "effects", "--batch-size", "50", TEST_CONSUMER_TOPIC=kafka_topic)
    _wait(lambda: Effect.objects.count() >= 300, timeout=60, what="the consumer to make progress")
    first.kill(signal.SIGKILL)
    killed_at = Effect.objects.count()
    spawn("consume", "effects", "--batch-size", "50", TEST_CONSUMER_TOPIC=kafka_topic)
    _wait(lambda: Effect.objects.count() >= 3000, timeout=90, what="the restarted consumer to finish")
    time.sleep(1.0)

    assert killed_at < 3000, "the kill came after the end; the test proved nothing"
    assert Effect.objects.count() == 3000
    assert Effect.objects.values("event_id").distinct().count() == 3000


def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(kafka_bootstrap, kafka_topic, spawn):
    from common.events import Envelope

    events = [Envelope.new("test.pinged", source="tests", subject="k", data={"seq": i}) for i in range(200)]
    produce(kafka_bootstrap, kafka_topic, [(b"k", e.to_json()) for e in events])
    proc = spawn("consume", "effects", "--batch-size", "20", TEST_CONSUMER_TOPIC=kafka_topic)
    _wait(lambda: Effect.objects.count() >= 200, timeout=60, what="the consumer to handle every event")

    code = proc.kill(signal.SIGTERM)

    assert code == 0, proc.output()[-2000:]
    assert "received 200, handled 200" in proc.output()


def test_with_the_broker_down_commits_succeed_and_every_event_arrives_once_it_is_back(kafka_bootstrap, kafka_topic):
    sys.path.insert(0, str(ROOT / "infra"))
    import components

    kafka = components.Kafka()
    kafka.down()
    try:
        for seq in range(100):
            with transaction.atomic():  # a request's transaction: succeeds with no broker
                publish(kafka_topic, "test.pinged", f"k{seq % 4}", {"seq": seq})
        down = relay.relay_pending()
        failing = OutboxMessage.objects.filter(published_at__isnull=True)
        assert down.sent == 0 and down.failed > 0
        assert failing.count() == 100 and failing.filter(attempts__gt=0).exclude(last_error="").exists()
    finally:
        kafka.start()

    OutboxMessage.objects.update(next_attempt_at=None)  # what the admin's "retry now" does

    def delivered() -> bool:
        relay.relay_pending()
        return not OutboxMessage.objects.filter(published_at__isnull=True).exists()

    _wait(delivered, timeout=90, what="the relay to deliver after the broker came back")

    messages = read_topic(kafka_bootstrap, kafka_topic, expected=100, timeout=60)
    _assert_per_key_order_and_completeness(messages, 100)
