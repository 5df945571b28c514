"""The fill engine: trades from a real topic, LIMIT partial fills, MARKET, IOC, FOK, fees, dedup by trade id."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from common.consumers.base import ConsumerRunner
from common.consumers.models import DeadLetter
from common.events import Envelope
from common.testing.kafka import produce
from orders.handlers import fill_engine_spec, handle_trades
from orders.models import Fill, LastTrade, Order
from orders.services import orders_expire_unfilled_immediate
from orders.tests.conftest import published
from orders.tests.factories import apply, open_order, trade, trade_data


def _run_fill_engine(bootstrap: str, topic: str, trades: list[dict | Envelope], *, on_topic: int) -> ConsumerRunner:
    """Produce the trades (payloads, or envelopes to send again) for real, then run a new group over the topic."""
    envelopes = [
        t if isinstance(t, Envelope) else Envelope.new("trade", source="feed", subject=t["s"], data=t) for t in trades
    ]
    produce(bootstrap, topic, [(e.subject.encode(), e.to_json()) for e in envelopes])
    runner = ConsumerRunner(fill_engine_spec(topic=topic, name=f"test-fills-{uuid.uuid4().hex[:8]}"))
    runner.run(max_messages=on_topic, idle_exit_s=10)
    assert runner.stats.received == on_topic
    return runner


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_limit_buy_fills_in_two_partial_fills_from_the_market_data_topic(kafka_bootstrap, kafka_topic):
    order = open_order(quantity=Decimal("0.02"), price=Decimal("30000.00"))
    trades = [
        trade_data(price="30000.01", qty="5", trade_id=10),  # above the limit: no fill
        trade_data(price="29999.50", qty="0.012", trade_id=11, ms=1_700_000_000_500),
        trade_data(price="29000.00", qty="3", trade_id=12, ms=1_700_000_001_000),
    ]

    _run_fill_engine(kafka_bootstrap, kafka_topic, trades, on_topic=3)
    # The same trades again, and a new group reading all six from the start: every one was applied already.
    _run_fill_engine(kafka_bootstrap, kafka_topic, trades, on_topic=6)

    order.refresh_from_db()
    assert order.status == "FILLED"
    assert order.executed_qty == Decimal("0.02") and order.cumulative_quote_qty == Decimal("600.00")
    fills = list(order.fills.order_by("trade_id").values_list("trade_id", "price", "qty", "quote_qty", "fee"))
    assert fills == [
        (11, Decimal("30000.00"), Decimal("0.012"), Decimal("360.00"), Decimal("0.000012")),
        (12, Decimal("30000.00"), Decimal("0.008"), Decimal("240.00"), Decimal("0.000008")),
    ]
    events = published("order.filled")
    first_fill = order.fills.get(trade_id=11)
    assert events[0] == {
        "fill_id": str(first_fill.id),
        "order_id": str(order.id),
        "user_id": str(order.user_id),
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "side": "BUY",
        "price": "30000.00000000",
        "qty": "0.01200000",
        "quote_qty": "360.00000000",
        "fee": "0.00001200",
        "fee_asset": "BTC",
        "status": "PARTIALLY_FILLED",
        "remaining_qty": "0.00800000",
        "executed_at": "2023-11-14T22:13:20.500000Z",
        "is_maker": True,
        "trade_id": 11,
    }
    assert (events[1]["status"], events[1]["remaining_qty"]) == ("FILLED", "0.00000000")
    assert len(events) == 2
    last = LastTrade.objects.get(symbol="BTCUSDT")
    assert (last.trade_id, last.price) == (12, Decimal("29000.00"))


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_limit_sell_fills_at_its_price_and_pays_the_fee_in_the_quote_asset():
    order = open_order(side="SELL", quantity=Decimal("0.01"), price=Decimal("31000.00"))

    assert apply(trade(price="30999.99", qty="1")) == 0
    assert apply(trade(price="31500.00", qty="1")) == 1

    fill = Fill.objects.get(order=order)
    assert (fill.price, fill.quote_qty, fill.fee, fill.fee_asset) == (
        Decimal("31000.00"),
        Decimal("310.00"),
        Decimal("0.31"),
        "USDT",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_orders_crossed_by_one_trade_share_its_quantity_in_acceptance_order():
    first = open_order(quantity=Decimal("0.01"))
    second = open_order(quantity=Decimal("0.01"))

    apply(trade(price="29000.00", qty="0.015"))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.executed_qty) == ("FILLED", Decimal("0.01"))
    assert (second.status, second.executed_qty) == ("PARTIALLY_FILLED", Decimal("0.005"))


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_trade_below_the_minimum_lot_fills_nothing_and_the_next_trade_fills_the_order():
    order = open_order(quantity=Decimal("0.01"), price=Decimal("30000.00"))  # BTCUSDT: min qty and step 0.00001
    tiny, normal = (
        Envelope.new("trade", source="feed", subject="BTCUSDT", data=trade_data(price="29000.00", qty=q, trade_id=i))
        for q, i in (("0.000004", 20), ("0.01", 21))
    )

    with transaction.atomic():  # as the consumer runner holds a batch
        handle_trades([tiny])

    order.refresh_from_db()
    assert (order.status, order.executed_qty) == ("NEW", Decimal("0"))
    assert not order.fills.exists()
    assert published("order.filled") == []
    assert LastTrade.objects.get(symbol="BTCUSDT").trade_id == 20  # applied: it filled nothing, and never will

    with transaction.atomic():
        handle_trades([normal])

    order.refresh_from_db()
    assert (order.status, order.executed_qty) == ("FILLED", Decimal("0.01"))
    assert list(order.fills.values_list("trade_id", "qty")) == [(21, Decimal("0.01"))]
    assert [(e["trade_id"], e["qty"], e["status"]) for e in published("order.filled")] == [(21, "0.01000000", "FILLED")]


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_orders_crossed_by_one_trade_never_share_more_than_its_quantity():
    first = open_order(quantity=Decimal("0.01"))
    second = open_order(quantity=Decimal("0.01"))

    # one lot and half a lot: the first takes the lot, the half left is no lot for the second
    assert apply(trade(price="29000.00", qty="0.000015")) == 1

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.executed_qty) == ("PARTIALLY_FILLED", Decimal("0.00001"))
    assert (second.status, second.executed_qty) == ("NEW", Decimal("0"))
    assert Fill.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_market_buy_fills_completely_at_the_next_trade_price_as_taker(settings):
    settings.ORDER_TAKER_FEE_RATE = Decimal("0.002")
    apply(trade(price="20000.00", qty="1"))
    order = open_order(type_="MARKET", quantity=Decimal("0.01"))

    apply(trade(price="20100.00", qty="0.00001"))

    order.refresh_from_db()
    fill = order.fills.get()
    assert order.status == "FILLED"
    assert (fill.price, fill.qty, fill.quote_qty, fill.fee, fill.is_maker) == (
        Decimal("20100.00"),
        Decimal("0.01"),
        Decimal("201.00"),
        Decimal("0.00002"),
        False,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_market_buy_by_quote_amount_buys_what_it_affords_rounded_down_to_the_step():
    order = open_order(type_="MARKET", quantity=None, quote_order_qty=Decimal("100"))

    apply(trade(price="30000.00", qty="1"))

    order.refresh_from_db()
    assert order.status == "FILLED"
    assert order.quantity == Decimal("0.00333") and order.executed_qty == Decimal("0.00333")
    assert order.cumulative_quote_qty == Decimal("99.90")  # never more than the 100 reserved


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_market_buy_by_quote_amount_that_buys_less_than_one_lot_expires_without_a_fill():
    order = open_order(type_="MARKET", quantity=None, quote_order_qty=Decimal("5"))

    apply(trade(price="600000.00", qty="1"))  # 5 USDT buys 0.0000083 BTC: below the 0.00001 lot

    order.refresh_from_db()
    assert (order.status, order.reason) == ("EXPIRED", "quote_order_qty buys less than one lot at this price")
    assert not order.fills.exists() and published("order.filled") == []


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_market_buy_expires_when_the_price_ran_past_its_reserved_buffer():
    apply(trade(price="20000.00", qty="1"))
    order = open_order(type_="MARKET", quantity=Decimal("0.01"))  # reserves 210 USDT

    apply(trade(price="21500.00", qty="1"))

    order.refresh_from_db()
    assert order.status == "EXPIRED" and not order.fills.exists()
    assert published("order.cancelled")[0]["status"] == "EXPIRED"


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_ioc_fills_what_the_first_crossing_trade_allows_and_expires_the_rest():
    order = open_order(time_in_force="IOC", quantity=Decimal("0.02"))

    apply(trade(price="30000.00", qty="0.005"))
    apply(trade(price="30000.00", qty="1"))

    order.refresh_from_db()
    assert (order.status, order.executed_qty) == ("EXPIRED", Decimal("0.005"))
    assert [e["status"] for e in published("order.filled")] == ["PARTIALLY_FILLED"]
    assert published("order.cancelled") == [
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "symbol": "BTCUSDT",
            "status": "EXPIRED",
            "reason": "IOC: remainder after the first crossing trade",
        }
    ]
    assert published("order.filled")[0]["is_maker"] is False


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_fok_fills_completely_or_expires_without_a_fill():
    too_big = open_order(time_in_force="FOK", quantity=Decimal("0.02"))
    fits = open_order(time_in_force="FOK", quantity=Decimal("0.01"), price=Decimal("29000.00"))

    apply(trade(price="29000.00", qty="0.01"))

    too_big.refresh_from_db()
    fits.refresh_from_db()
    assert too_big.status == "EXPIRED" and not too_big.fills.exists()
    assert fits.status == "FILLED" and fits.executed_qty == Decimal("0.01")


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_a_market_order_no_trade_reaches_in_time_expires(settings):
    settings.ORDER_IMMEDIATE_TIMEOUT_S = 5
    apply(trade(price="20000.00", qty="1"))
    stale = open_order(type_="MARKET", quantity=Decimal("0.01"))
    fresh = open_order(type_="MARKET", quantity=Decimal("0.01"))
    resting = open_order()
    Order.objects.filter(id__in=[stale.id, resting.id]).update(accepted_at=timezone.now() - timedelta(seconds=6))

    assert orders_expire_unfilled_immediate() == 1

    assert Order.objects.get(id=stale.id).status == "EXPIRED"
    assert Order.objects.get(id=fresh.id).status == "NEW"
    assert Order.objects.get(id=resting.id).status == "NEW"  # a GTC LIMIT rests until it fills or is cancelled
    assert published("order.cancelled") == [
        {
            "order_id": str(stale.id),
            "user_id": str(stale.user_id),
            "symbol": "BTCUSDT",
            "status": "EXPIRED",
            "reason": "no trade in time",
        }
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("symbols")
def test_trades_at_or_below_the_last_applied_id_and_of_unknown_symbols_are_skipped():
    order = open_order(quantity=Decimal("0.01"))
    apply(trade(price="31000.00", qty="1", trade_id=500))

    assert apply(trade(price="29000.00", qty="1", trade_id=500), trade(price="29000.00", qty="1", trade_id=499)) == 0
    assert apply(trade("DOGEUSDT", price="0.1", qty="10", trade_id=1)) == 0

    order.refresh_from_db()
    assert order.status == "NEW"
    assert LastTrade.objects.get(symbol="BTCUSDT").trade_id == 500


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("symbols")
def test_a_batch_with_redelivered_trades_and_a_poison_applies_the_rest_once_and_dead_letters_the_poison(
    kafka_bootstrap, kafka_topic
):
    btc = open_order(quantity=Decimal("0.01"), price=Decimal("30000.00"))
    eth = open_order(symbol="ETHUSDT", quantity=Decimal("0.5"), price=Decimal("2000.00"))
    applied = Envelope.new(
        "trade", source="feed", subject="BTCUSDT", data=trade_data(price="29000", qty="0.004", trade_id=10)
    )
    _run_fill_engine(kafka_bootstrap, kafka_topic, [applied], on_topic=1)
    twice = Envelope.new(
        "trade", source="feed", subject="BTCUSDT", data=trade_data(price="29500", qty="0.003", trade_id=11)
    )
    # Valid by its contract, but its id does not fit the table's bigint: no retry can apply it.
    poison = Envelope.new(
        "trade", source="feed", subject="BTCUSDT", data=trade_data(price="29000", qty="1", trade_id=2**63)
    )

    runner = _run_fill_engine(
        kafka_bootstrap,
        kafka_topic,
        [applied, twice, twice, poison, trade_data("ETHUSDT", price="1990", qty="0.2", trade_id=5)],
        on_topic=6,  # a new group: the first run's trade again too
    )

    btc.refresh_from_db()
    eth.refresh_from_db()
    assert list(btc.fills.order_by("trade_id").values_list("trade_id", "qty")) == [
        (10, Decimal("0.004")),
        (11, Decimal("0.003")),
    ]
    assert (btc.status, btc.executed_qty) == ("PARTIALLY_FILLED", Decimal("0.007"))
    assert (eth.status, eth.executed_qty) == ("PARTIALLY_FILLED", Decimal("0.2"))
    # once each, whichever partition came first
    assert sorted(e["trade_id"] for e in published("order.filled")) == [5, 10, 11]
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.topic) == (poison.id, kafka_topic)
    assert runner.stats.dead_lettered == 1
    assert LastTrade.objects.get(symbol="BTCUSDT").trade_id == 11
