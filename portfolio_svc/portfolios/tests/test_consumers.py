"""The consumers against the real broker: each ConsumerSpec runs in-process on a fresh topic."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from common.consumers.base import ConsumerRunner
from common.consumers.models import DeadLetter
from common.events import Envelope
from common.outbox.models import OutboxMessage
from common.testing.kafka import produce
from common.topics import Topic
from portfolios.handlers import market_data_spec, order_events_spec, portfolio_commands_spec, user_events_spec
from portfolios.models import Balance, LedgerEntry, Portfolio, Price, Reservation, Settlement
from portfolios.tests.conftest import published
from portfolios.tests.factories import (
    order_cancelled,
    order_filled,
    portfolio_with,
    release_command,
    reserve,
    reserve_command,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _send(bootstrap: str, topic: str, *envelopes: Envelope) -> None:
    produce(bootstrap, topic, [(e.subject.encode(), e.to_json()) for e in envelopes])


def _run(spec, *, expect: int) -> ConsumerRunner:
    runner = ConsumerRunner(spec, batch_size=100, poll_timeout=0.2)
    runner.run(max_messages=expect, idle_exit_s=10)
    assert runner.stats.received == expect, runner.stats
    return runner


def _registered(user_id: uuid.UUID) -> Envelope:
    data = {"user_id": str(user_id), "email": f"{user_id.hex[:8]}@example.com", "display_name": "Ada"}
    return Envelope.new("user.registered", source="user_svc", subject=str(user_id), data=data)


def test_registration_creates_the_default_portfolio_with_starting_funds_once(kafka_bootstrap, kafka_topic, user_id):
    event = _registered(user_id)
    _send(kafka_bootstrap, kafka_topic, event)

    _run(user_events_spec(topic=kafka_topic), expect=1)

    portfolio = Portfolio.objects.get(user_id=user_id)
    assert (portfolio.name, portfolio.is_default) == ("Default", True)
    balance = Balance.objects.get(portfolio=portfolio)
    assert (balance.asset_id, balance.available, balance.locked) == ("USDT", Decimal(10000), Decimal(0))
    outbox = {(m.topic, m.event_type, m.key) for m in OutboxMessage.objects.all()}
    assert outbox == {
        (Topic.PORTFOLIO_EVENTS, "portfolio.created", str(portfolio.id)),
        (Topic.BALANCE_EVENTS, "balance.credited", str(user_id)),
    }
    assert published("portfolio.created") == [
        {"portfolio_id": str(portfolio.id), "user_id": str(user_id), "name": "Default", "is_default": True}
    ]
    assert published("balance.credited") == [
        {
            "user_id": str(user_id),
            "portfolio_id": str(portfolio.id),
            "asset": "USDT",
            "amount": "10000.00000000",
            "reason": "starting_funds",
        }
    ]

    # The same event redelivered, and the same fact sent again as a new event: nothing new either way.
    _send(kafka_bootstrap, kafka_topic, event, _registered(user_id))
    again = _run(user_events_spec(topic=kafka_topic), expect=2)

    assert (again.stats.duplicates, again.stats.handled) == (1, 1)
    assert Portfolio.objects.filter(user_id=user_id).count() == 1
    assert Balance.objects.get(portfolio=portfolio).available == Decimal(10000)
    assert OutboxMessage.objects.count() == 2
    assert LedgerEntry.objects.count() == 1


def test_reserve_and_release_commands_answer_on_balance_events(kafka_bootstrap, kafka_topic, user_id):
    portfolio = portfolio_with(user_id, USDT="100")
    commands = [
        Envelope.new(
            "portfolio.reserve_funds",
            source="order_svc",
            subject=str(user_id),
            data={
                "order_id": order,
                "saga_id": f"s-{order}",
                "user_id": str(user_id),
                "asset": "USDT",
                "amount": amount,
            },
        )
        for order, amount in [("k-1", "70"), ("k-2", "70")]
    ]
    release = Envelope.new(
        "portfolio.release_funds",
        source="order_svc",
        subject=str(user_id),
        data={"order_id": "k-1", "saga_id": "s-k-1", "user_id": str(user_id), "reason": "saga timed out"},
    )
    _send(kafka_bootstrap, kafka_topic, *commands, release)  # one key: one partition, in this order

    _run(portfolio_commands_spec(topic=kafka_topic), expect=3)

    assert [e["order_id"] for e in published("balance.reserved")] == ["k-1"]
    assert [(e["order_id"], e["reason"]) for e in published("balance.reservation_failed")] == [
        ("k-2", "insufficient_funds")
    ]
    assert [(e["order_id"], e["amount"]) for e in published("balance.released")] == [("k-1", "70.00000000")]
    balance = Balance.objects.get(portfolio=portfolio)
    assert (balance.available, balance.locked) == (Decimal(100), Decimal(0))
    answers = OutboxMessage.objects.exclude(event_type__in=["portfolio.created", "balance.credited"])
    assert {(m.topic, m.key) for m in answers} == {(Topic.BALANCE_EVENTS, str(user_id))}


def test_a_fill_that_cannot_be_settled_goes_to_the_dlq_without_retries(kafka_bootstrap, kafka_topic, user_id):
    data = {
        "fill_id": "f-x",
        "order_id": "never-reserved",
        "user_id": str(user_id),
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "side": "BUY",
        "price": "30000",
        "qty": "0.1",
        "quote_qty": "3000",
        "fee": "0.0001",
        "fee_asset": "BTC",
        "status": "FILLED",
        "remaining_qty": "0",
        "executed_at": "2025-01-01T00:00:00Z",
    }
    _send(kafka_bootstrap, kafka_topic, Envelope.new("order.filled", source="order_svc", subject="o", data=data))

    runner = _run(order_events_spec(topic=kafka_topic), expect=1)

    assert runner.stats.dead_lettered == 1
    letter = DeadLetter.objects.get()
    assert letter.attempts == 1 and letter.error.startswith(
        "permanent: fill f-x: order never-reserved has no reservation"
    )
    assert published("balance.settled") == []


def test_market_data_keeps_the_newest_trade_per_symbol(kafka_bootstrap, kafka_topic):
    def trade(symbol: str, trade_id: int, price: str, time_ms: int) -> Envelope:
        data = {"e": "trade", "E": time_ms, "s": symbol, "t": trade_id, "p": price, "q": "1", "T": time_ms, "m": False}
        return Envelope.new("trade", source="analytics_svc", subject=symbol, data=data)

    newest_btc = trade("BTCUSDT", 3, "30002.5", 1_700_000_002_000)
    _send(
        kafka_bootstrap,
        kafka_topic,
        trade("BTCUSDT", 1, "30000", 1_700_000_000_000),
        newest_btc,
        trade("ETHUSDT", 7, "2000.01", 1_700_000_001_000),
    )
    _run(market_data_spec(topic=kafka_topic), expect=3)
    # An older trade and a redelivery arrive later: neither moves the price back.
    _send(kafka_bootstrap, kafka_topic, trade("BTCUSDT", 2, "29999", 1_700_000_001_000), newest_btc)
    _run(market_data_spec(topic=kafka_topic), expect=2)

    prices = {p.symbol: (p.price, p.trade_id) for p in Price.objects.all()}
    assert prices == {"BTCUSDT": (Decimal("30002.5"), 3), "ETHUSDT": (Decimal("2000.01"), 7)}


def test_a_command_batch_with_duplicates_and_a_poison_gives_the_valid_effects_once(
    kafka_bootstrap, kafka_topic, user_id
):
    portfolio = portfolio_with(user_id, USDT="100")
    seen = reserve_command(user_id, "m-1", "30")
    _send(kafka_bootstrap, kafka_topic, seen)
    _run(portfolio_commands_spec(topic=kafka_topic), expect=1)

    fresh = reserve_command(user_id, "m-2", "20")
    poison = reserve_command("not-a-uuid", "m-3", "10", subject=str(user_id))  # between the valid commands
    batch = [seen, fresh, fresh, poison, release_command(user_id, "m-1"), reserve_command(user_id, "m-4", "60")]
    _send(kafka_bootstrap, kafka_topic, *batch)
    runner = _run(portfolio_commands_spec(topic=kafka_topic), expect=6)

    assert (runner.stats.dead_lettered, runner.stats.duplicates, runner.stats.handled) == (1, 2, 3)
    assert runner.stats.retried_batches >= 1
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.attempts) == (poison.id, 1)
    assert letter.error == "permanent: portfolio.reserve_funds: user_id 'not-a-uuid' is not a UUID"
    assert [(e["order_id"], e["amount"]) for e in published("balance.reserved")] == [
        ("m-1", "30.00000000"),
        ("m-2", "20.00000000"),
        ("m-4", "60.00000000"),
    ]
    assert [(e["order_id"], e["amount"]) for e in published("balance.released")] == [("m-1", "30.00000000")]
    assert published("balance.reservation_failed") == []
    balance = Balance.objects.get(portfolio=portfolio)
    assert (balance.available, balance.locked) == (Decimal(20), Decimal(80))
    assert LedgerEntry.objects.filter(kind="RESERVE").count() == 3
    assert not Reservation.objects.filter(order_id="m-3").exists()


def test_an_order_event_batch_with_duplicates_and_poisons_gives_the_valid_effects_once(
    kafka_bootstrap, kafka_topic, user_id
):
    portfolio = portfolio_with(user_id, USDT="1000")
    reserve(user_id, "USDT", "300", order_id="buy-1")
    reserve(user_id, "USDT", "100", order_id="buy-2")
    key = str(user_id)  # one partition, so the batch keeps this order
    seen = order_filled(user_id, "buy-1", "f-0", qty="0.001", price="100000", status="PARTIALLY_FILLED", subject=key)
    _send(kafka_bootstrap, kafka_topic, seen)
    _run(order_events_spec(topic=kafka_topic), expect=1)

    last = order_filled(user_id, "buy-1", "f-1", qty="0.001", price="100000", status="FILLED", subject=key)
    same_fill = order_filled(user_id, "buy-1", "f-1", qty="0.001", price="100000", status="FILLED", subject=key)
    unknown_order = order_filled(user_id, "nope", "f-2", qty="1", price="1", status="FILLED", subject=key)
    not_a_user = order_filled("not-a-uuid", "buy-1", "f-3", qty="1", price="1", status="FILLED", subject=key)
    created = Envelope.new(
        "order.created",
        source="order_svc",
        subject=key,
        data={
            "order_id": "buy-3",
            "user_id": key,
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "client_order_id": "c-3",
        },
    )
    batch = [
        seen,
        last,
        last,
        unknown_order,
        same_fill,
        created,
        not_a_user,
        order_cancelled(user_id, "buy-2", subject=key),
    ]
    _send(kafka_bootstrap, kafka_topic, *batch)
    runner = _run(order_events_spec(topic=kafka_topic), expect=8)

    stats = runner.stats
    assert (stats.dead_lettered, stats.skipped, stats.duplicates, stats.handled) == (2, 1, 2, 3)
    assert runner.stats.retried_batches >= 1
    letters = {letter.event_id: letter.error for letter in DeadLetter.objects.all()}
    assert letters == {
        unknown_order.id: "permanent: fill f-2: order nope has no reservation to settle fill f-2 against",
        not_a_user.id: "permanent: order.filled: user_id 'not-a-uuid' is not a UUID",
    }
    assert [e["fill_id"] for e in published("balance.settled")] == ["f-0", "f-1"]
    assert [(e["order_id"], e["amount"]) for e in published("balance.released")] == [
        ("buy-1", "100.00000000"),
        ("buy-2", "100.00000000"),
    ]
    holdings = {b.asset_id: (b.available, b.locked) for b in Balance.objects.filter(portfolio=portfolio)}
    assert holdings == {"USDT": (Decimal(800), Decimal(0)), "BTC": (Decimal("0.002"), Decimal(0))}
    assert Settlement.objects.count() == 2
    assert LedgerEntry.objects.filter(kind="FILL_CREDIT").count() == 2
