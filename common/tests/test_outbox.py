"""The outbox: publish() only inside a transaction, rows relayed to the real broker in per-key order."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from common.correlation import caused_by
from common.events import MalformedEvent, UnknownEventType
from common.outbox import relay
from common.outbox.models import OutboxMessage
from common.outbox.services import OutboxError, publish
from common.testing.kafka import read_topic
from common.tests.models import Effect

pytestmark = pytest.mark.django_db(transaction=True)


def _publish_many(topic: str, count: int, keys: int) -> None:
    with transaction.atomic():
        for seq in range(count):
            publish(topic, "test.pinged", f"k{seq % keys}", {"seq": seq})


def test_publish_outside_a_transaction_raises_and_writes_nothing(kafka_topic):
    with pytest.raises(OutboxError, match=r"inside transaction\.atomic"):
        publish(kafka_topic, "test.pinged", "k", {"seq": 1})

    assert OutboxMessage.objects.count() == 0


def test_a_rolled_back_transaction_publishes_nothing(kafka_topic):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(kafka_topic, "test.pinged", "k", {"seq": 1})
        Effect.objects.create(event_id="x", key="k", seq=1)
        raise RuntimeError("business rule failed after publishing")

    assert OutboxMessage.objects.count() == 0
    assert relay.relay_pending().sent == 0


def test_publish_refuses_unknown_types_bad_data_and_the_wrong_topic(kafka_topic):
    with transaction.atomic():
        with pytest.raises(UnknownEventType):
            publish(kafka_topic, "test.unheard_of", "k", {})
        with pytest.raises(MalformedEvent):
            publish(kafka_topic, "test.pinged", "k", {"seq": "one"})
        with pytest.raises(OutboxError, match="belongs on user-events"):
            publish("order-events", "user.logged_in", "u1", {"user_id": "u1"})

    assert OutboxMessage.objects.count() == 0


def test_rows_carry_topic_key_headers_and_the_envelope_with_its_cause(kafka_topic):
    with caused_by(correlation_id="req-42", causation_id="evt-1"), transaction.atomic():
        envelope = publish(kafka_topic, "test.pinged", "k1", {"seq": 7})

    row = OutboxMessage.objects.get()
    doc = json.loads(bytes(row.payload))
    assert (row.topic, row.key, row.event_type, row.event_id) == (
        kafka_topic,
        "k1",
        "test.pinged",
        envelope.id,
    )
    assert ["ce_type", "test.pinged"] in row.headers
    assert doc["correlationid"] == "req-42" and doc["causationid"] == "evt-1" and doc["data"] == {"seq": 7}
    assert row.published_at is None


def test_the_relay_delivers_every_row_once_in_per_key_order(kafka_bootstrap, kafka_topic):
    _publish_many(kafka_topic, 300, keys=7)

    result = relay.relay_pending(batch_size=64)
    messages = read_topic(kafka_bootstrap, kafka_topic, expected=300)

    assert result.sent == 300 and result.failed == 0
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 0
    assert len(messages) == 300
    by_key: dict[bytes, list[int]] = {}
    for msg in messages:
        by_key.setdefault(msg.key(), []).append(json.loads(msg.value())["data"]["seq"])
    assert len(by_key) == 7
    for seqs in by_key.values():
        assert seqs == sorted(seqs)
    assert relay.relay_pending().sent == 0  # nothing is sent twice


def test_a_relay_pass_costs_the_same_statements_for_one_row_as_for_a_batch(kafka_topic):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(rows: int) -> list[str]:
        _publish_many(kafka_topic, rows, keys=5)
        with CaptureQueriesContext(connection) as queries:
            assert relay.relay_pending().sent == rows
        return [q["sql"].split()[0].upper() for q in queries]

    one, batch = statements(1), statements(400)

    # The lock, one read, the published marks (one as acks arrive if any came during the pass, one at its end),
    # the unlock: nothing per row.
    for seen in (one, batch):
        assert seen.count("SELECT") == 3, seen  # try-lock, the pending rows, unlock
        assert 1 <= seen.count("UPDATE") <= 2, seen
        assert len(seen) <= 5, seen


def test_one_relay_at_a_time_per_database_and_the_second_does_not_wait(kafka_topic):
    from django.db import connections

    _publish_many(kafka_topic, 5, keys=1)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [relay.RELAY_LOCK_KEY])
        started = time.monotonic()
        result = relay.relay_pending()
        elapsed = time.monotonic() - started
    finally:
        other.close()

    assert result.locked_out and result.sent == 0
    assert elapsed < 0.5  # one pg_try_advisory_lock, no polling for the lock
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 5


def test_published_rows_are_purged_after_the_retention(kafka_topic):
    _publish_many(kafka_topic, 3, keys=1)
    relay.relay_pending()
    old = OutboxMessage.objects.order_by("id").first()
    OutboxMessage.objects.filter(pk=old.pk).update(published_at=timezone.now() - timedelta(hours=30))
    _publish_many(kafka_topic, 1, keys=1)  # pending: never purged

    purged = relay.purge_published(older_than=timedelta(hours=24))

    assert purged == 1
    assert OutboxMessage.objects.count() == 3
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 1


def test_outbox_status_fails_when_the_oldest_pending_row_is_too_old(kafka_topic, capsys):
    from django.core.management.base import CommandError

    call_command("outbox_status", "--max-age", "60")
    _publish_many(kafka_topic, 2, keys=1)
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    with pytest.raises(CommandError, match=r"is .* old"):
        call_command("outbox_status", "--max-age", "60")
    assert "pending 2" in capsys.readouterr().out


def test_the_admin_never_deletes_an_unpublished_row(client, django_user_model, kafka_topic):
    operator = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    client.force_login(operator)
    _publish_many(kafka_topic, 2, keys=2)
    published, pending = OutboxMessage.objects.order_by("id")
    OutboxMessage.objects.filter(pk=published.pk).update(published_at=timezone.now())

    single = client.post(f"/admin/outbox/outboxmessage/{pending.pk}/delete/", {"post": "yes"})
    mixed = client.post(
        "/admin/outbox/outboxmessage/",
        {"action": "delete_selected", "_selected_action": [published.pk, pending.pk], "post": "yes"},
    )
    both_kept = sorted(OutboxMessage.objects.values_list("pk", flat=True))
    only_published = client.post(
        "/admin/outbox/outboxmessage/",
        {"action": "delete_selected", "_selected_action": [published.pk], "post": "yes"},
    )

    assert single.status_code == 403  # JSON, like every error
    assert mixed.status_code == 403 and both_kept == [published.pk, pending.pk]
    assert only_published.status_code == 302
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [pending.pk]
