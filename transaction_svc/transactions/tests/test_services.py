"""Booking fills and logging order events through the services: exact rows, one event out, no partial writes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.exceptions import ApplicationError
from common.outbox.models import OutboxMessage
from transactions.models import RecordedFill, Transaction, TransactionEvent
from transactions.services import transaction_event_record, transaction_record
from transactions.tests.factories import fill_data, record_fill

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
