"""The fill engine works per batch: the same statements for one trade as for a hundred, and batched = one by one."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.outbox.models import OutboxMessage
from orders.models import Fill, LastTrade, Order, OrderEvent
from orders.services import fills as fill_engine
from orders.services import trades_apply
from orders.tests.conftest import published
from orders.tests.factories import apply, open_order, trade

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("symbols")]

# INSERT last trades ON CONFLICT DO NOTHING, SELECT them FOR UPDATE, SELECT the open book FOR UPDATE,
# INSERT fills, UPDATE orders, UPDATE last trades, INSERT outbox rows, INSERT order events, SELECT pg_notify (the
# waiters of the orders whose status changed).
STATEMENTS_PER_BATCH = 9
# ... and, the first time a process meets a symbol, one SELECT of the symbols it has not met yet.
SYMBOL_LOOKUP = 1


@pytest.fixture(autouse=True)
def _cold_symbol_cache():
    fill_engine.symbols_cache_clear()
    yield
    fill_engine.symbols_cache_clear()


def _statements(trades, *, cold: bool = True) -> tuple[int, int]:
    """(statements, fills) of applying `trades` as one batch, inside a transaction like the consumer runner's."""
    if cold:
        fill_engine.symbols_cache_clear()
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        made = trades_apply(trades=trades)
    return len(ctx.captured_queries), made


def _book(symbol: str, price: str, *, gtc: int) -> dict[str, list[Order]]:
    """An IOC and a MARKET first, `gtc` GTC LIMIT buys, then a FOK: 0.01 each (the IOC 0.02, the FOK 0.03)."""
    limit = {"symbol": symbol, "price": Decimal(price)}
    return {
        "ioc": [open_order(time_in_force="IOC", quantity=Decimal("0.02"), **limit)],
        "market": [open_order(type_="MARKET", symbol=symbol, quantity=Decimal("0.01"))],
        "gtc": [open_order(quantity=Decimal("0.01"), **limit) for _ in range(gtc)],
        "fok": [open_order(time_in_force="FOK", quantity=Decimal("0.03"), **limit)],
    }


def test_a_batch_of_one_trade_and_of_a_hundred_over_two_symbols_cost_the_same_statements():
    apply(trade("BTCUSDT", price="30000.00", qty="1"), trade("ETHUSDT", price="2000.00", qty="1"))  # MARKET prices
    single = open_order(quantity=Decimal("0.01"), price=Decimal("30000.00"))

    one, one_fill = _statements([trade("BTCUSDT", price="29999.00", qty="0.01")])

    single.refresh_from_db()
    assert (one_fill, single.status) == (1, "FILLED")
    books = {"BTCUSDT": _book("BTCUSDT", "30000.00", gtc=50), "ETHUSDT": _book("ETHUSDT", "2000.00", gtc=50)}
    trades = [
        trade(symbol, price=price, qty="0.01")
        for _ in range(50)
        for symbol, price in (("BTCUSDT", "29990.00"), ("ETHUSDT", "1999.00"))
    ]
    before = OutboxMessage.objects.count()

    hundred, hundred_fills = _statements(trades)

    # Per symbol the first trade fills the IOC's 0.01 and expires its rest, fills the MARKET order whole,
    # expires the FOK (0.01 < 0.03); the other 49 trades fill 49 of the 50 GTC orders, in acceptance order.
    assert hundred_fills == 2 * (1 + 1 + 49)
    for book in books.values():
        for order in (o for kind in book.values() for o in kind):
            order.refresh_from_db()
        assert [o.status for o in book["ioc"] + book["market"] + book["fok"]] == ["EXPIRED", "FILLED", "EXPIRED"]
        assert [o.status for o in book["gtc"]] == ["FILLED"] * 49 + ["NEW"]
    assert OutboxMessage.objects.count() - before == hundred_fills + 4  # every fill, and the IOC and FOK ends
    assert one == hundred == STATEMENTS_PER_BATCH + SYMBOL_LOOKUP
    # Once the process knows its symbols, a batch needs no symbol lookup.
    warm, _ = _statements([trade("BTCUSDT", price="29990.00", qty="0.01")], cold=False)
    assert warm == STATEMENTS_PER_BATCH


def test_a_batch_gives_what_applying_its_trades_one_by_one_gives():
    def scenario(batched: bool) -> list[tuple]:
        apply(trade("BTCUSDT", price="30000.00", qty="1"), trade("ETHUSDT", price="2000.00", qty="1"))
        orders = [
            open_order(quantity=Decimal("0.02"), price=Decimal("30000.00")),
            open_order(side="SELL", quantity=Decimal("0.01"), price=Decimal("30100.00")),
            open_order(time_in_force="IOC", quantity=Decimal("0.02"), price=Decimal("29900.00")),
            open_order(time_in_force="FOK", quantity=Decimal("0.01"), price=Decimal("29800.00")),
            open_order(type_="MARKET", quantity=None, quote_order_qty=Decimal("100")),
            open_order(symbol="ETHUSDT", quantity=Decimal("0.5"), price=Decimal("2000.00")),
            open_order(symbol="ETHUSDT", time_in_force="FOK", quantity=Decimal("1"), price=Decimal("1999.00")),
        ]
        trades = [
            trade("BTCUSDT", price="30200.00", qty="0.004"),  # the SELL 0.004, the MARKET all it affords
            trade("ETHUSDT", price="1998.00", qty="0.3"),  # 0.3 of the ETH buy, and the ETH FOK expires
            trade("BTCUSDT", price="29850.00", qty="0.015"),  # the buy 0.015, the IOC nothing: it expires
            trade("BTCUSDT", price="29700.00", qty="0.02"),  # buy 0.005 more, then the FOK 0.01 fits
            trade("ETHUSDT", price="1990.00", qty="1"),  # the rest of the ETH buy
            trade("BTCUSDT", price="30150.00", qty="1"),  # the rest of the SELL
        ]
        before = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()
        if batched:
            with transaction.atomic():
                trades_apply(trades=list(reversed(trades)))  # any order in: trade ids decide
        else:
            for t in sorted(trades, key=lambda t: (t.symbol, t.trade_id)):
                apply(t)
        for order in orders:
            order.refresh_from_db()
        events = OutboxMessage.objects.filter(id__gt=before, event_type__in=["order.filled", "order.cancelled"])
        by_order = {str(o.id): i for i, o in enumerate(orders)}
        history = [(by_order[e.key], e.event_type, OrderEvent.objects.get(event_id=e.event_id).type) for e in events]
        fills = [
            (by_order[str(f.order_id)], f.price, f.qty, f.quote_qty, f.fee, f.fee_asset, f.is_maker)
            for f in Fill.objects.filter(order__in=orders).order_by("order__accepted_at", "trade_id")
        ]
        state = [(o.status, o.quantity, o.executed_qty, o.cumulative_quote_qty, o.reason) for o in orders]
        return [state, fills, sorted(history, key=lambda h: h[0])]  # each order's events in order

    with transaction.atomic():
        one_by_one = scenario(batched=False)
        transaction.set_rollback(True)
    fill_engine.symbols_cache_clear()
    batched = scenario(batched=True)

    assert batched == one_by_one
    state = batched[0]
    assert [s[0] for s in state] == ["FILLED", "FILLED", "EXPIRED", "FILLED", "FILLED", "FILLED", "EXPIRED"]


def test_the_same_batch_again_fills_nothing_and_publishes_nothing():
    order = open_order(quantity=Decimal("0.03"))
    batch = [trade(price="29000.00", qty="0.01"), trade(price="29500.00", qty="0.01")]
    with transaction.atomic():
        assert trades_apply(trades=batch) == 2
    outbox, fills = OutboxMessage.objects.count(), Fill.objects.count()

    with transaction.atomic():
        assert trades_apply(trades=batch) == 0
        assert trades_apply(trades=batch[:1]) == 0

    assert (OutboxMessage.objects.count(), Fill.objects.count()) == (outbox, fills)
    order.refresh_from_db()
    assert (order.status, order.executed_qty) == ("PARTIALLY_FILLED", Decimal("0.02"))
    assert LastTrade.objects.get(symbol="BTCUSDT").trade_id == batch[-1].trade_id


def test_a_trade_delivered_twice_in_one_batch_fills_once():
    order = open_order(quantity=Decimal("0.03"))
    once = trade(price="29000.00", qty="0.01")

    assert apply(once, once) == 1

    order.refresh_from_db()
    assert order.executed_qty == Decimal("0.01")
    assert len(published("order.filled", order_id=str(order.id))) == 1


def test_fill_events_continue_each_orders_trace():
    order = open_order(quantity=Decimal("0.01"))
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    Order.objects.filter(id=order.id).update(traceparent=traced)

    apply(trade(price="29000.00", qty="1"))

    row = OutboxMessage.objects.get(event_type="order.filled")
    envelope = json.loads(bytes(row.payload))
    assert envelope["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
