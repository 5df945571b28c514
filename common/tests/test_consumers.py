"""Consumers against the real broker: inbox dedup, dead letters, retries, replays."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.db import transaction

from common import namespace
from common.consumers.base import ConsumerRunner, replay_dead_letters
from common.consumers.models import DeadLetter, InboxMessage
from common.events import Envelope
from common.outbox import relay
from common.outbox.services import publish
from common.testing.kafka import admin_config, end_offsets, produce, read_topic
from common.tests import handlers
from common.tests.handlers import effects_spec
from common.tests.models import Effect
from common.topics import dlq

pytestmark = pytest.mark.django_db(transaction=True)


def _event(type_: str, seq: int, **data) -> Envelope:
    return Envelope.new(type_, source="tests", subject=f"k{seq % 3}", data={"seq": seq, **data})


def _send(bootstrap: str, topic: str, *envelopes_or_bytes) -> None:
    produce(
        bootstrap,
        topic,
        [(b"k", e.to_json()) if isinstance(e, Envelope) else (b"k", e) for e in envelopes_or_bytes],
    )


def _run(topic: str, *, expect: int, **spec_options) -> ConsumerRunner:
    runner = ConsumerRunner(effects_spec(topic, **spec_options), batch_size=200)
    runner.run(max_messages=expect, idle_exit_s=5)
    return runner


def test_each_event_is_handled_once_and_offsets_are_committed_after(kafka_bootstrap, kafka_topic):
    events = [_event("test.pinged", i) for i in range(50)]
    _send(kafka_bootstrap, kafka_topic, *events)

    runner = _run(kafka_topic, expect=50)

    assert runner.stats.handled == 50 and runner.stats.duplicates == 0
    assert sorted(Effect.objects.values_list("seq", flat=True)) == list(range(50))
    assert InboxMessage.objects.filter(consumer="effects").count() == 50
    committed = _committed(kafka_bootstrap, runner.spec.group_id, kafka_topic)
    assert sum(committed.values()) == 50


def test_the_same_message_delivered_twice_has_one_effect(kafka_bootstrap, kafka_topic):
    event = _event("test.pinged", 1)
    _send(kafka_bootstrap, kafka_topic, event, event)

    runner = _run(kafka_topic, expect=2)

    assert Effect.objects.filter(event_id=event.id).count() == 1
    assert runner.stats.duplicates == 1


def test_replaying_a_range_of_offsets_changes_nothing(kafka_bootstrap, kafka_topic):
    _send(kafka_bootstrap, kafka_topic, *[_event("test.pinged", i) for i in range(30)])
    first = _run(kafka_topic, expect=30)
    _rewind(kafka_bootstrap, first.spec.group_id, kafka_topic)

    again = _run(kafka_topic, expect=30)

    assert again.stats.received == 30 and again.stats.duplicates == 30 and again.stats.handled == 0
    assert Effect.objects.count() == 30


def test_malformed_and_always_failing_messages_go_to_the_dlq_and_the_rest_is_handled(kafka_bootstrap, kafka_topic):
    before, poison, after = _event("test.pinged", 1), _event("test.exploded", 2), _event("test.pinged", 3)
    _send(kafka_bootstrap, kafka_topic, before, b"{not json", poison, after)

    runner = _run(kafka_topic, expect=4, max_attempts=2)
    relay.relay_pending()
    dead = read_topic(kafka_bootstrap, dlq(kafka_topic), expected=2)

    assert sorted(Effect.objects.values_list("seq", flat=True)) == [1, 3]
    assert runner.stats.dead_lettered == 2
    letters = {d.event_type or "malformed": d for d in DeadLetter.objects.all()}
    assert letters["malformed"].error.startswith("malformed: not JSON")
    assert "cannot handle #2" in letters["test.exploded"].error and letters["test.exploded"].attempts == 2
    assert sorted(m.value() for m in dead) == sorted([b"{not json", poison.to_json()])
    headers = dict(next(m for m in dead if m.value() == b"{not json").headers())
    assert headers["dlq_error"].startswith(b"malformed") and headers["dlq_topic"] == kafka_topic.encode()


def test_a_transient_handler_error_is_retried_with_backoff_then_succeeds(kafka_bootstrap, kafka_topic):
    flaky = _event("test.flaky", 5, fail_times=2)
    _send(kafka_bootstrap, kafka_topic, flaky)

    runner = _run(kafka_topic, expect=1, max_attempts=4)

    assert handlers.attempts[flaky.id] == 3
    assert Effect.objects.filter(event_id=flaky.id).count() == 1
    assert runner.stats.dead_lettered == 0


def test_unknown_event_types_are_skipped(kafka_bootstrap, kafka_topic):
    stranger = json.loads(_event("test.pinged", 1).to_json())
    stranger["type"] = "test.from_the_future"
    other_contract = Envelope.new("user.logged_in", source="tests", subject="u", data={"user_id": "u"})
    _send(kafka_bootstrap, kafka_topic, json.dumps(stranger).encode(), other_contract, _event("test.pinged", 2))

    runner = _run(kafka_topic, expect=3)

    assert runner.stats.skipped == 2 and runner.stats.handled == 1
    assert DeadLetter.objects.count() == 0


def test_a_replayed_dead_letter_is_handled_again_by_its_own_consumer_only(kafka_bootstrap, kafka_topic):
    flaky = _event("test.flaky", 9, fail_times=3)
    _send(kafka_bootstrap, kafka_topic, flaky)
    _run(kafka_topic, expect=1, max_attempts=1)  # the batch fails, then the message alone: dead-lettered
    assert Effect.objects.count() == 0 and DeadLetter.objects.count() == 1
    assert handlers.attempts[flaky.id] == 2
    end = end_offsets(kafka_bootstrap, kafka_topic)
    specs = {"effects": effects_spec(kafka_topic, max_attempts=1)}

    # Still failing: it stays a dead letter, and its inbox row is claimed again (a redelivery is skipped).
    assert replay_dead_letters(DeadLetter.objects.all(), specs=specs) == 0
    assert DeadLetter.objects.get().replayed_at is None
    assert InboxMessage.objects.filter(consumer="effects", event_id=flaky.id).exists()

    handlers.attempts[flaky.id] = 5  # the cause of the failure is fixed
    assert replay_dead_letters(DeadLetter.objects.all(), specs=specs) == 1

    assert Effect.objects.filter(event_id=flaky.id).count() == 1
    assert DeadLetter.objects.get().replayed_at is not None
    # Handed to its consumer, not put back on the topic: the other groups reading it never see it twice.
    assert end_offsets(kafka_bootstrap, kafka_topic) == end
    assert replay_dead_letters(DeadLetter.objects.filter(replayed_at__isnull=True), specs=specs) == 0


def test_a_handler_may_publish_and_its_event_carries_the_chain(kafka_bootstrap, kafka_topic):
    seen = []

    def handle_and_publish(envelope: Envelope) -> None:
        seen.append(publish(kafka_topic + "-out", "test.pinged", envelope.subject, {"seq": 100}))

    from common.consumers.base import ConsumerSpec

    event = _event("test.pinged", 1)
    _send(kafka_bootstrap, kafka_topic, event)
    runner = ConsumerRunner(
        ConsumerSpec(name="chain", topics=[kafka_topic], handlers={"test.pinged": handle_and_publish})
    )
    runner.run(max_messages=1, idle_exit_s=5)

    assert seen[0].correlationid == event.correlationid and seen[0].causationid == event.id


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({**admin_config(bootstrap), "group.id": namespace.group(group)})
    try:
        parts = consumer.committed([TopicPartition(namespace.topic(topic), p) for p in range(3)], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in parts}
    finally:
        consumer.close()


def _rewind(bootstrap: str, group: str, topic: str) -> None:
    consumer = Consumer({**admin_config(bootstrap), "group.id": namespace.group(group)})
    try:
        consumer.commit(offsets=[TopicPartition(namespace.topic(topic), p, 0) for p in range(3)], asynchronous=False)
    finally:
        consumer.close()


def test_publish_in_the_batch_is_atomic_with_the_inbox(kafka_bootstrap, kafka_topic):
    """A batch that fails after a handler published leaves neither its inbox rows nor its outbox rows."""
    from common.outbox.models import OutboxMessage

    calls = []

    def publish_then_fail(envelope: Envelope) -> None:
        calls.append(envelope.id)
        publish(kafka_topic, "test.pinged", "k", {"seq": 1})
        raise RuntimeError("fails after publishing")

    from common.consumers.base import ConsumerSpec

    _send(kafka_bootstrap, kafka_topic, _event("test.pinged", 1))
    runner = ConsumerRunner(
        ConsumerSpec(name="atomic", topics=[kafka_topic], handlers={"test.pinged": publish_then_fail}, max_attempts=2)
    )
    runner.run(max_messages=1, idle_exit_s=5)

    assert len(calls) == 3  # the batch, then two attempts alone
    with transaction.atomic():
        assert OutboxMessage.objects.exclude(event_type="(raw)").count() == 0  # only the dead letter went out
        assert OutboxMessage.objects.filter(topic=dlq(kafka_topic)).count() == 1


def test_inbox_rows_are_purged_after_their_retention_and_the_beat_runs_the_purge(settings):
    from datetime import timedelta

    from django.utils import timezone

    from common.consumers.tasks import purge_inbox

    def row(event_id: str) -> InboxMessage:
        return InboxMessage.objects.create(
            consumer="purge-test", event_id=event_id, event_type="t", topic="t", partition=0, offset=0
        )

    old, recent = row("old"), row("recent")
    InboxMessage.objects.filter(pk=old.pk).update(processed_at=timezone.now() - timedelta(hours=169))

    assert purge_inbox() == 1
    assert list(InboxMessage.objects.filter(consumer="purge-test").values_list("event_id", flat=True)) == [
        recent.event_id
    ]
    schedule = settings.CELERY_BEAT_SCHEDULE["inbox-purge"]
    assert schedule["task"] == purge_inbox.name and schedule["schedule"] <= 3600
    assert settings.INBOX_RETENTION_HOURS == 168.0
