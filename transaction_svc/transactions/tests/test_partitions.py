"""The month partitions: made by migrate and by beat ahead of time, a default that catches and reports strays."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from transactions import tasks
from transactions.handlers import handle_order_events
from transactions.models import Transaction
from transactions.partitions import DEFAULT_PARTITION, Month
from transactions.selectors import TransactionFilters, default_partition_rows, partition_list, transaction_list
from transactions.services import partitions_ensure
from transactions.tests.factories import order_event, record_fill

# Plain django_db: each test's DDL (CREATE TABLE ... PARTITION OF) rolls back with its transaction.
pytestmark = pytest.mark.django_db

STRAY_MONTH = Month(2001, 3)  # long before any partition the migration or beat creates


def _partition_of(transaction_id: uuid.UUID) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM transactions WHERE id = %s", [transaction_id])
        return cursor.fetchone()[0]


def test_after_migrate_partitions_exist_for_this_month_and_the_coming_months():
    current = Month.of(datetime.now(UTC))
    names = {p.name for p in partition_list()}

    wanted = {current.plus(k).partition for k in range(-1, 4)}
    assert wanted <= names
    assert DEFAULT_PARTITION in names
    bounds = {p.name: p.bounds for p in partition_list()}
    assert bounds[DEFAULT_PARTITION] == "DEFAULT"
    start = current.start.strftime("%Y-%m-%d 00:00:00+00")
    assert bounds[current.partition] == f"FOR VALUES FROM ('{start}') TO ('{current.end:%Y-%m-%d} 00:00:00+00')"


def test_a_fill_of_this_month_lands_in_this_months_partition():
    record = record_fill()

    assert _partition_of(record.id) == Month.of(record.executed_at).partition
    assert default_partition_rows() == {}


def test_one_batch_of_fills_of_several_months_routes_each_to_its_partition_and_a_stray_to_default():
    current = Month.of(datetime.now(UTC))
    months = [current, current.plus(-1), STRAY_MONTH, current.plus(1)]
    fills = [order_event("order.filled", executed_at=month.start + timedelta(hours=1)) for month in months]

    with transaction.atomic():
        handle_order_events(fills)

    placed = [_partition_of(Transaction.objects.get(fill_id=f.data["fill_id"]).id) for f in fills]
    assert placed == [current.partition, current.plus(-1).partition, DEFAULT_PARTITION, current.plus(1).partition]
    assert default_partition_rows() == {STRAY_MONTH: 1}


def test_ensuring_partitions_creates_the_months_ahead_once():
    now = datetime(2040, 1, 15, 12, tzinfo=UTC)

    created = partitions_ensure(months_ahead=2, now=now)
    again = partitions_ensure(months_ahead=2, now=now)

    assert created == [
        "transactions_y2039m12",
        "transactions_y2040m01",
        "transactions_y2040m02",
        "transactions_y2040m03",
    ]
    assert again == []


def test_a_fill_in_a_month_without_partition_records_in_default_and_the_check_reports_it():
    stray = record_fill(executed_at=datetime(2001, 3, 31, 23, 59, 59, tzinfo=UTC))

    assert Transaction.objects.get(pk=stray.pk).fill_id == stray.fill_id
    assert _partition_of(stray.id) == DEFAULT_PARTITION
    assert default_partition_rows() == {STRAY_MONTH: 1}
    warnings = [m for m in checks.run_checks(databases=["default"]) if m.id == "transactions.W001"]
    assert [w.msg for w in warnings] == ["1 ledger rows are in the default partition: 2001-03 (1)"]
    with pytest.raises(CommandError, match=r"default partition holds 1 rows \(2001-03: 1\)"):
        call_command("ensure_partitions", "--months", "0", "--check", stdout=StringIO())


def test_beat_task_creates_partitions_and_logs_the_rows_left_in_default(caplog):
    record_fill(executed_at=datetime(2001, 3, 1, tzinfo=UTC))
    current = Month.of(datetime.now(UTC))
    with connection.cursor() as cursor:  # as if beat had not run for a while
        cursor.execute(f'DROP TABLE "{current.plus(3).partition}"')

    created = tasks.ensure_partitions()

    assert created == [current.plus(3).partition]
    assert [r.message for r in caplog.records if r.name == "transactions.tasks"] == [
        "ledger rows in the default partition"
    ]
    assert default_partition_rows() == {STRAY_MONTH: 1}  # reported, not moved behind the operator's back


def test_adopting_the_default_partition_moves_strays_into_their_new_month_partition():
    stray = record_fill(executed_at=datetime(2001, 3, 10, tzinfo=UTC))
    out = StringIO()

    call_command("ensure_partitions", "--months", "0", "--adopt-default", "--check", stdout=out)

    assert "created transactions_y2001m03" in out.getvalue()
    assert "default partition: empty" in out.getvalue()
    assert _partition_of(stray.id) == STRAY_MONTH.partition
    assert Transaction.objects.filter(fill_id=stray.fill_id).count() == 1
    assert default_partition_rows() == {}
    assert [m for m in checks.run_checks(databases=["default"]) if m.id == "transactions.W001"] == []


def test_beat_schedule_runs_ensure_partitions_next_to_the_outbox_entries():
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert schedule["transactions-ensure-partitions"]["task"] == "transactions.tasks.ensure_partitions"
    assert {"outbox-sweep", "outbox-purge"} <= schedule.keys()


def _plan(queryset) -> str:
    return queryset.explain()


def _scanned_partitions(plan: str) -> set[str]:
    """The partitions a plan reads: every `... Scan on <partition>` node."""
    return set(re.findall(r"\bon (transactions_(?:y\d{4}m\d{2}|default))\b", plan))


def test_a_one_month_range_query_plan_touches_only_that_months_partition():
    month = Month.of(datetime.now(UTC))
    user = uuid.uuid4()
    record_fill(user_id=user, executed_at=month.start + timedelta(days=1))
    filters = TransactionFilters(start=month.start, end=month.end)

    plan = _plan(transaction_list(user_id=user, filters=filters))
    export_plan = _plan(
        transaction_list(user_id=user, filters=filters).values_list("id", "executed_at", "price", "qty")
    )

    assert _scanned_partitions(plan) == {month.partition}, plan
    assert _scanned_partitions(export_plan) == {month.partition}, export_plan


def test_a_two_month_range_touches_two_partitions_and_no_range_touches_them_all():
    month = Month.of(datetime.now(UTC))
    user = uuid.uuid4()
    both = TransactionFilters(start=month.plus(-1).start + timedelta(days=3), end=month.end - timedelta(days=1))

    two = _scanned_partitions(_plan(transaction_list(user_id=user, filters=both)))
    every = _scanned_partitions(_plan(transaction_list(user_id=user, filters=TransactionFilters())))

    assert two == {month.plus(-1).partition, month.partition}
    assert every == {p.name for p in partition_list()}
