"""The order saga, its replies produced as real balance-events envelopes to a fresh topic and consumed by its spec."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from common.consumers.base import ConsumerRunner
from common.events import Envelope
from common.testing.kafka import produce
from orders.handlers import CONSUMERS, saga_replies_spec
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
