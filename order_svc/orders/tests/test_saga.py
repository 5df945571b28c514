"""The order saga, its replies produced as real balance-events envelopes to a fresh topic and consumed by its spec."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common import namespace
from common.consumers.base import ConsumerRunner, PermanentError
from common.consumers.models import DeadLetter
from common.events import Envelope
from common.kafka import ADMIN, producer_config
from common.outbox.models import OutboxMessage
from common.testing.kafka import produce
from orders.handlers import CONSUMERS, handle_balance_events, saga_replies_spec
from orders.models import Order, OrderEvent, Saga, SagaState
from orders.services import saga_retry_step, sagas_expire_overdue
from orders.tests.conftest import published
from orders.tests.factories import place

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("symbols")]


def _reserved(order: Order, **overrides) -> Envelope:
    data = {
        "order_id": str(order.id),
        "saga_id": str(order.saga.id),
        "user_id": str(order.user_id),
        "portfolio_id": str(uuid.uuid4()),
        "asset": order.reserved_asset,
        "amount": format(order.reserved_amount, "f"),
        **overrides,
    }
    return Envelope.new("balance.reserved", source="portfolio_svc", subject=str(order.user_id), data=data)


def _failed(order: Order, reason: str) -> Envelope:
    data = {
        "order_id": str(order.id),
        "saga_id": str(order.saga.id),
        "user_id": str(order.user_id),
        "asset": order.reserved_asset,
        "amount": format(order.reserved_amount, "f"),
        "reason": reason,
    }
    return Envelope.new("balance.reservation_failed", source="portfolio_svc", subject=str(order.user_id), data=data)


def _deliver(bootstrap: str, topic: str, *envelopes: Envelope) -> ConsumerRunner:
    """Produce the replies for real and run the saga's consumer on them until all were read."""
    produce(bootstrap, topic, [(e.subject.encode(), e.to_json()) for e in envelopes])
    runner = ConsumerRunner(saga_replies_spec(topic=topic, name=f"test-replies-{uuid.uuid4().hex[:8]}"))
    runner.run(max_messages=len(envelopes), idle_exit_s=10)
    assert runner.stats.received == len(envelopes)
    return runner


def test_replies_accept_reject_and_a_duplicate_changes_nothing(kafka_bootstrap, kafka_topic):
    accepted, refused = place(), place(side="SELL")
    reply = _reserved(accepted)
    other = Envelope.new("balance.released", source="portfolio_svc", subject="u", data={
        "order_id": "o", "saga_id": "s", "user_id": "u", "asset": "BTC", "amount": "1"})  # fmt: skip

    runner = _deliver(
        kafka_bootstrap,
        kafka_topic,
        reply,
        _failed(refused, "insufficient BTC: available 0.1, needed 0.01"),
        reply,  # redelivered: the inbox drops it
        _reserved(accepted),  # the same reply sent again under a new id: the saga is done, nothing happens
        other,  # a type this consumer has no handler for
    )

    accepted.refresh_from_db()
    refused.refresh_from_db()
    assert accepted.status == "NEW" and accepted.accepted_at is not None
    assert accepted.saga.state == SagaState.COMPLETED and accepted.saga.deadline is None
    assert [h["step"] for h in accepted.saga.history] == ["reserve_funds", "accepted"]
    assert refused.status == "REJECTED" and refused.reason == "insufficient BTC: available 0.1, needed 0.01"
    assert refused.saga.state == SagaState.FAILED
    assert published("order.accepted") == [
        {"order_id": str(accepted.id), "user_id": str(accepted.user_id), "symbol": "BTCUSDT", "status": "NEW"}
    ]
    assert published("order.rejected") == [
        {
            "order_id": str(refused.id),
            "user_id": str(refused.user_id),
            "symbol": "BTCUSDT",
            "reason": "insufficient BTC: available 0.1, needed 0.01",
        }
    ]
    assert published("portfolio.release_funds") == []  # a refusal locked nothing
    assert (runner.stats.duplicates, runner.stats.skipped, runner.stats.dead_lettered) == (1, 1, 0)


def test_no_reply_before_the_deadline_compensates_and_a_late_reservation_is_released(kafka_bootstrap, kafka_topic):
    order = place()
    waiting = place()
    Saga.objects.filter(order=order).update(deadline=timezone.now() - timedelta(seconds=1))

    assert sagas_expire_overdue() == 1
    assert sagas_expire_overdue() == 0  # a second sweep finds nothing left to do

    order.refresh_from_db()
    assert order.status == "REJECTED" and order.reason == "timeout"
    assert order.saga.state == SagaState.COMPENSATED and order.saga.current_step == "release_funds"
    assert published("portfolio.release_funds") == [
        {"order_id": str(order.id), "saga_id": str(order.saga.id), "user_id": str(order.user_id), "reason": "timeout"}
    ]
    assert published("order.rejected", order_id=str(order.id))[0]["reason"] == "timeout"
    assert Order.objects.get(id=waiting.id).status == "PENDING_NEW"  # its deadline has not passed

    _deliver(kafka_bootstrap, kafka_topic, _reserved(order))

    order.refresh_from_db()
    assert order.status == "REJECTED"
    releases = published("portfolio.release_funds", order_id=str(order.id))
    assert [r["reason"] for r in releases] == ["timeout", "late reservation"]
    assert "late reservation" in order.saga.history[-1]["note"]
    assert published("order.accepted") == []


def test_a_reply_for_an_unknown_saga_or_a_mismatched_order_is_ignored(kafka_bootstrap, kafka_topic):
    order = place()
    stranger = _reserved(order, saga_id=str(uuid.uuid4()))
    mismatched = _reserved(order, order_id=str(uuid.uuid4()))

    runner = _deliver(kafka_bootstrap, kafka_topic, stranger, mismatched)

    order.refresh_from_db()
    assert order.status == "PENDING_NEW" and order.saga.state == SagaState.RESERVING
    assert runner.stats.dead_lettered == 0
    assert published("order.accepted") == [] and published("portfolio.release_funds") == []


def _handle(*envelopes: Envelope) -> None:
    """One Kafka batch through the batch handler, in one transaction as the runner holds it."""
    with transaction.atomic():
        handle_balance_events(list(envelopes))


def _history(order: Order) -> list[tuple[str, str]]:
    return [(h["step"], h["state"]) for h in Saga.objects.get(order=order).history]


def test_replies_of_one_saga_in_one_batch_give_what_they_gave_one_after_the_other():
    order, late = place(), place()
    Saga.objects.filter(order=late).update(deadline=timezone.now() - timedelta(seconds=1))
    assert sagas_expire_overdue() == 1  # `late` gave up: released, rejected

    _handle(
        _reserved(order),
        _failed(order, "insufficient USDT"),  # the saga has accepted: a refusal now changes nothing
        _reserved(order),  # the same answer again, under another id: nothing
        _reserved(late),  # a reservation the saga no longer wants: released
        _reserved(late),  # and a second one released again, as a second transaction would have
    )

    order.refresh_from_db()
    late.refresh_from_db()
    assert order.status == "NEW" and order.reason == "" and order.accepted_at is not None
    assert _history(order) == [("reserve_funds", "RESERVING"), ("accepted", "COMPLETED")]
    assert published("order.accepted") == [
        {"order_id": str(order.id), "user_id": str(order.user_id), "symbol": "BTCUSDT", "status": "NEW"}
    ]
    assert published("order.rejected", order_id=str(order.id)) == []
    assert late.status == "REJECTED" and late.reason == "timeout" and late.accepted_at is None
    assert _history(late) == [
        ("reserve_funds", "RESERVING"),
        ("release_funds", "COMPENSATED"),
        ("release_funds", "COMPENSATED"),
        ("release_funds", "COMPENSATED"),
    ]
    assert (
        Saga.objects.get(order=late).history[-1]["note"] == f"late reservation of {late.reserved_amount} USDT: released"
    )
    assert [r["reason"] for r in published("portfolio.release_funds")] == [
        "timeout",
        "late reservation",
        "late reservation",
    ]
    assert OrderEvent.objects.filter(order=late, type="portfolio.release_funds").count() == 3


def test_what_a_reply_causes_carries_its_correlation_and_causation():
    accepted, refused = place(), place()
    reply, refusal = _reserved(accepted), _failed(refused, "insufficient USDT")

    _handle(reply, refusal)

    rows = OutboxMessage.objects.filter(event_type__in=["order.accepted", "order.rejected"])
    sent = {m.event_type: json.loads(bytes(m.payload)) for m in rows}
    assert (sent["order.accepted"]["causationid"], sent["order.accepted"]["correlationid"]) == (reply.id, reply.id)
    assert (sent["order.rejected"]["causationid"], sent["order.rejected"]["correlationid"]) == (refusal.id, refusal.id)
    assert OrderEvent.objects.get(order=accepted, type="order.accepted").event_id == sent["order.accepted"]["id"]


def test_a_reply_that_cannot_be_stored_is_a_permanent_error_and_the_batch_writes_nothing():
    order, other = place(), place()
    nul = _failed(order, "no\x00funds")  # PostgreSQL stores no NUL in a text column nor in JSON
    not_a_number = dataclasses.replace(_reserved(other), data={**_reserved(other).data, "amount": "lots"})

    for poison in (nul, not_a_number):
        with pytest.raises(PermanentError):
            _handle(_reserved(other), poison)

    assert set(Order.objects.values_list("status", flat=True)) == {"PENDING_NEW"}
    assert published("order.accepted") == [] and published("order.rejected") == []


def test_a_batch_of_duplicates_poison_and_valid_replies_through_the_consumer(kafka_bootstrap, kafka_topic):
    seen, accepted, refused, compensated, malformed_for, unstorable_for = (place() for _ in range(6))
    Saga.objects.filter(order=compensated).update(deadline=timezone.now() - timedelta(seconds=1))
    assert sagas_expire_overdue() == 1
    spec = saga_replies_spec(topic=kafka_topic, name=f"test-replies-{uuid.uuid4().hex[:8]}")
    processed = _reserved(seen)
    produce(kafka_bootstrap, kafka_topic, [(processed.subject.encode(), processed.to_json())])
    ConsumerRunner(spec).run(max_messages=1, idle_exit_s=10)  # handled once, before the batch below

    reply = _reserved(accepted)
    malformed = {**_reserved(malformed_for).to_dict()}
    malformed["data"] = {**malformed["data"], "amount": "abc"}  # fails the contract: dead-lettered unparsed
    unstorable = _failed(unstorable_for, "no\x00funds")  # passes the contract; the handler's verdict: permanent
    messages = [
        processed,  # already handled: the inbox drops it
        reply,
        _failed(refused, "insufficient USDT"),
        reply,  # the same event twice in one batch: handled once
        _reserved(compensated),  # a late reservation: released
        unstorable,
    ]
    producer = Producer(producer_config(kafka_bootstrap, principal=ADMIN))  # plays portfolio_svc's part
    for envelope in messages:
        producer.produce(namespace.topic(kafka_topic), key=envelope.subject.encode(), value=envelope.to_json())
    producer.produce(
        namespace.topic(kafka_topic), key=malformed["subject"].encode(), value=json.dumps(malformed).encode()
    )
    # A type the saga does not read, skipped from its header: the value is not even parsed.
    producer.produce(
        namespace.topic(kafka_topic), key=b"u", value=b"not json", headers=[("ce_type", "balance.settled")]
    )
    assert producer.flush(30) == 0

    runner = ConsumerRunner(spec)
    runner.run(max_messages=len(messages) + 2, idle_exit_s=10)

    statuses = dict(Order.objects.values_list("id", "status"))
    assert statuses == {
        seen.id: "NEW",
        accepted.id: "NEW",
        refused.id: "REJECTED",
        compensated.id: "REJECTED",
        malformed_for.id: "PENDING_NEW",
        unstorable_for.id: "PENDING_NEW",
    }
    assert sorted(d["order_id"] for d in published("order.accepted")) == sorted([str(seen.id), str(accepted.id)])
    assert [d["order_id"] for d in published("order.rejected", reason="insufficient USDT")] == [str(refused.id)]
    assert [(d["order_id"], d["reason"]) for d in published("portfolio.release_funds")] == [
        (str(compensated.id), "timeout"),
        (str(compensated.id), "late reservation"),
    ]
    assert _history(accepted) == [("reserve_funds", "RESERVING"), ("accepted", "COMPLETED")]
    assert _history(seen) == [("reserve_funds", "RESERVING"), ("accepted", "COMPLETED")]
    letters = DeadLetter.objects.filter(consumer=spec.name).order_by("offset")
    assert sorted(letter.error.split(":")[0] for letter in letters) == ["malformed", "permanent"]
    assert [letter.event_id for letter in letters if letter.error.startswith("permanent")] == [unstorable.id]
    assert (runner.stats.duplicates, runner.stats.dead_lettered, runner.stats.skipped) == (2, 2, 1)
    assert runner.stats.retried_batches >= 1  # the unstorable reply failed its batch, which went one by one


def test_retrying_a_stuck_saga_sends_its_command_again_and_extends_the_deadline():
    order = place()
    Saga.objects.filter(order=order).update(deadline=timezone.now() + timedelta(milliseconds=1))

    assert saga_retry_step(saga_id=order.saga.id) == "reserve_funds"

    saga = Saga.objects.get(order=order)
    assert len(published("portfolio.reserve_funds")) == 2
    assert saga.deadline > timezone.now() + timedelta(seconds=settings.ORDER_SAGA_TIMEOUT_S - 2)
    assert saga.history[-1]["note"] == "retried by an operator"
    assert OrderEvent.objects.filter(order=order, type="portfolio.reserve_funds").count() == 2


def test_the_service_declares_its_consumers_and_deadline_sweeps():
    assert {(s.name, tuple(s.topics), s.inbox) for s in CONSUMERS} == {
        ("balance-events", ("balance-events",), True),
        ("market-data", ("market-data",), False),
    }
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["order-saga-deadlines"] == {"task": "orders.tasks.expire_overdue_sagas", "schedule": 1.0}
    assert schedule["order-immediate-deadlines"]["schedule"] == 1.0
    assert "outbox-sweep" in schedule  # the shared schedule is extended, not replaced
