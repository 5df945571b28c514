"""Booking fills and logging order events: exact rows, one event out, no partial writes, statements per batch."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.consumers.base import PermanentError
from common.events import Envelope
from common.exceptions import ApplicationError
from common.outbox.models import OutboxMessage
from common.testing.outbox import published
from transactions.handlers import handle_order_events
from transactions.models import RecordedFill, Transaction, TransactionEvent
from transactions.services import _DUPLICATE_EVENT_KEYS, transaction_event_record, transaction_record
from transactions.tests.factories import fill_data, order_event, record_fill

pytestmark = pytest.mark.django_db

USER = uuid.UUID("11111111-1111-4111-8111-111111111111")
EXECUTED = datetime.now(UTC).replace(microsecond=123456)


def _record(data: dict, event_id: str = "evt-1"):
    return transaction_record(
        event_id=event_id,
        fill_id=data["fill_id"],
        order_id=data["order_id"],
        user_id=uuid.UUID(data["user_id"]),
        symbol=data["symbol"],
        base_asset=data["base_asset"],
        quote_asset=data["quote_asset"],
        side=data["side"],
        price=Decimal(data["price"]),
        qty=Decimal(data["qty"]),
        quote_qty=Decimal(data["quote_qty"]),
        fee=Decimal(data["fee"]),
        fee_asset=data["fee_asset"],
        order_status=data["status"],
        executed_at=datetime.fromisoformat(data["executed_at"]),
        occurred_at=EXECUTED,
        data=data,
    )


def test_recording_a_fill_books_one_row_logs_it_and_publishes_transaction_recorded():
    data = fill_data(fill_id="f-1", order_id="o-1", user_id=USER, executed_at=EXECUTED)

    record = _record(data)

    row = Transaction.objects.get()
    assert row.id == record.id
    assert (row.fill_id, row.order_id, row.user_id, row.symbol, row.side) == ("f-1", "o-1", USER, "BTCUSDT", "BUY")
    assert (row.price, row.qty, row.quote_qty, row.fee) == (
        Decimal("30000"),
        Decimal("0.5"),
        Decimal("15000"),
        Decimal("0.0005"),
    )
    assert (row.base_asset, row.quote_asset, row.fee_asset, row.order_status) == ("BTC", "USDT", "BTC", "FILLED")
    assert row.executed_at == EXECUTED
    assert RecordedFill.objects.get().transaction_id == row.id
    event = TransactionEvent.objects.get()
    assert (event.event_id, event.event_type, event.fill_id, event.transaction_id) == (
        "evt-1",
        "order.filled",
        "f-1",
        row.id,
    )
    outbox = OutboxMessage.objects.get()
    assert (outbox.topic, outbox.key, outbox.event_type) == ("transaction-events", str(USER), "transaction.recorded")
    assert json.loads(bytes(outbox.payload))["data"] == {
        "transaction_id": str(row.id),
        "fill_id": "f-1",
        "order_id": "o-1",
        "user_id": str(USER),
        "symbol": "BTCUSDT",
        "side": "BUY",
        "price": "30000",
        "qty": "0.5",
        "quote_qty": "15000",
        "fee": "0.0005",
        "fee_asset": "BTC",
        "executed_at": EXECUTED.isoformat().replace("+00:00", "Z"),
    }


def test_the_same_fill_under_a_new_event_id_records_nothing_new():
    data = fill_data(fill_id="f-dup", user_id=USER)
    first = _record(data, event_id="evt-a")

    again = _record(data, event_id="evt-b")

    assert first is not None and again is None
    assert Transaction.objects.count() == 1
    assert list(TransactionEvent.objects.values_list("event_id", flat=True)) == ["evt-a"]
    assert OutboxMessage.objects.count() == 1


def test_fill_ids_stay_unique_across_partitions_even_with_another_execution_time():
    data = fill_data(fill_id="f-moved", executed_at=EXECUTED)
    _record(data, event_id="evt-a")
    # The same fill claimed for another month (another partition) is still the same fill.
    later = {**data, "executed_at": "2001-02-03T04:05:06Z"}

    assert _record(later, event_id="evt-b") is None
    assert list(Transaction.objects.values_list("executed_at", flat=True)) == [EXECUTED]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("qty", "0.0000000000000000001", "qty has more than 18 decimal places"),
        ("price", "0", "price must be positive"),
        ("quote_qty", "123456789012345678901", "quote_qty is too large"),
        ("side", "HOLD", "side must be BUY or SELL, not 'HOLD'"),
    ],
)
def test_an_invalid_fill_is_refused_and_writes_nothing(field, value, message):
    data = fill_data(**{field: value})

    with pytest.raises(ApplicationError) as refused:
        _record(data)

    assert refused.value.message == message
    assert Transaction.objects.count() == 0
    assert RecordedFill.objects.count() == 0
    assert TransactionEvent.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_a_zero_fee_is_a_valid_fill():
    record = record_fill(fee="0")

    assert Transaction.objects.get(pk=record.pk).fee == Decimal(0)


def test_a_cancellation_is_logged_once_and_books_nothing():
    kwargs = {
        "event_type": "order.cancelled",
        "order_id": "o-9",
        "user_id": USER,
        "symbol": "ETHUSDT",
        "status": "CANCELED",
        "data": {"order_id": "o-9"},
        "occurred_at": EXECUTED,
    }

    logged = transaction_event_record(event_id="evt-c1", **kwargs)
    again = transaction_event_record(event_id="evt-c2", **kwargs)

    assert logged is not None and again is None
    event = TransactionEvent.objects.get()
    assert (event.event_id, event.event_type, event.status, event.fill_id) == (
        "evt-c1",
        "order.cancelled",
        "CANCELED",
        None,
    )
    assert Transaction.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_a_rejection_keeps_its_reason():
    transaction_event_record(
        event_id="evt-r",
        event_type="order.rejected",
        order_id="o-r",
        user_id=USER,
        symbol="BTCUSDT",
        reason="insufficient balance",
        data={},
        occurred_at=EXECUTED,
    )

    assert TransactionEvent.objects.values_list("event_type", "reason").get() == (
        "order.rejected",
        "insufficient balance",
    )


# --- the batch: one set-based call for every event of a Kafka batch ----------------------------------------


def _batch(size: int) -> list:
    """`size` events of as many orders: fills, cancellations and rejections in turn (a fill first)."""
    kinds = ["order.filled", "order.cancelled", "order.rejected"]
    return [order_event(kinds[n % 3]) for n in range(size)]


def _handle(envelopes: list) -> int:
    """Handle a batch as the runner does (inside its transaction); the number of SQL statements it took."""
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        handle_order_events(envelopes)
    return len(ctx.captured_queries)


def test_a_batch_costs_four_statements_whatever_its_size():
    # recorded_fills, transactions, transaction_events, outbox: one INSERT each, for 1 event as for 100.
    one, hundred = _batch(1), _batch(100)

    assert (_handle(one), _handle(hundred)) == (4, 4)
    fills = [e for e in one + hundred if e.type == "order.filled"]
    assert Transaction.objects.count() == RecordedFill.objects.count() == len(fills) == 35
    assert TransactionEvent.objects.count() == 101
    assert sorted(d["fill_id"] for d in published("transaction.recorded")) == sorted(e.data["fill_id"] for e in fills)


def test_a_batch_of_ended_orders_only_costs_one_statement_whatever_its_size():
    one = [order_event("order.cancelled")]
    hundred = [order_event("order.rejected" if n % 2 else "order.cancelled") for n in range(100)]

    assert (_handle(one), _handle(hundred)) == (1, 1)
    assert TransactionEvent.objects.count() == 101
    assert OutboxMessage.objects.count() == 0


def test_a_batch_books_each_fill_and_logs_each_ended_order_once_the_first_copy_winning():
    booked_before = order_event("order.filled")
    _handle([booked_before])
    fill = order_event("order.filled")
    resent = order_event("order.filled", **{**fill.data, "price": "1"})  # same fill, another event id
    cancelled = order_event("order.cancelled")
    cancelled_again = order_event("order.cancelled", **{**cancelled.data, "status": "EXPIRED"})
    again_later = order_event("order.filled", **booked_before.data)

    _handle([fill, cancelled, resent, again_later, cancelled_again])

    assert sorted(Transaction.objects.values_list("fill_id", "price")) == sorted(
        [(booked_before.data["fill_id"], Decimal(30000)), (fill.data["fill_id"], Decimal(30000))]
    )
    # One row per event kept, in the batch's order (the log's ids follow it).
    assert list(TransactionEvent.objects.order_by("id").values_list("event_id", "status")) == [
        (booked_before.id, "FILLED"),
        (fill.id, "FILLED"),
        (cancelled.id, "CANCELED"),
    ]
    assert [d["fill_id"] for d in published("transaction.recorded")] == [
        booked_before.data["fill_id"],
        fill.data["fill_id"],
    ]


def test_transaction_recorded_is_caused_by_the_fill_it_answers():
    first, second = order_event("order.filled"), order_event("order.filled")

    _handle([first, second])

    envelopes = [json.loads(bytes(row.payload)) for row in OutboxMessage.objects.order_by("id")]
    assert [(e["data"]["fill_id"], e["causationid"], e["correlationid"]) for e in envelopes] == [
        (first.data["fill_id"], first.id, first.correlationid),
        (second.data["fill_id"], second.id, second.correlationid),
    ]


def test_one_invalid_fill_refuses_the_whole_batch_and_writes_nothing():
    batch = [
        order_event("order.filled"),
        order_event("order.cancelled"),
        order_event("order.filled", qty="0.0000000000000000001"),
    ]

    with pytest.raises(PermanentError, match="qty has more than 18 decimal places"):
        _handle(batch)

    assert (Transaction.objects.count(), RecordedFill.objects.count(), TransactionEvent.objects.count()) == (0, 0, 0)
    assert OutboxMessage.objects.count() == 0


def test_a_fill_whose_event_id_is_logged_already_is_refused_and_books_nothing():
    rejected = order_event("order.rejected")
    _handle([rejected])
    reused = Envelope.new("order.filled", source="order_svc", subject="o", data=fill_data())
    reused = dataclasses.replace(reused, id=rejected.id)

    with pytest.raises(PermanentError, match=f"event {rejected.id} of fill .* conflicts with an event logged before"):
        _handle([reused])

    assert (Transaction.objects.count(), RecordedFill.objects.count(), TransactionEvent.objects.count()) == (0, 0, 1)


def test_every_unique_key_of_the_event_log_is_a_duplicate_key():
    # The log's INSERT skips a conflict on any unique key (ON CONFLICT DO NOTHING): a new unique key must be a
    # deliberate duplicate key too, or it would silently drop rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'transaction_events'::regclass AND i.indisunique AND NOT i.indisprimary"
        )
        unique_keys = {name for (name,) in cursor.fetchall()}

    assert unique_keys == _DUPLICATE_EVENT_KEYS
