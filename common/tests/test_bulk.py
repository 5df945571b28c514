"""common.bulk.bulk_update: one statement for any number of rows, values stored as save() stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.bulk import bulk_update
from common.outbox.models import OutboxMessage

pytestmark = pytest.mark.django_db


def _rows(count: int) -> list[OutboxMessage]:
    return OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(event_id=f"bulk-{i}", topic="t", key=f"k{i}", event_type="x", payload=b"{}", headers=[])
            for i in range(count)
        ]
    )


@pytest.mark.parametrize("count", [1, 100])
def test_one_statement_updates_every_row_with_its_own_values(count):
    rows = _rows(count)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for i, row in enumerate(rows):
        row.attempts = i + 1
        row.last_error = f"error 'quoted' {i}"
        row.headers = [["ce_type", f"t{i}"], ["n", {"nested": i}]]
        row.next_attempt_at = at + timedelta(seconds=i)
        row.published_at = None if i % 2 else at

    with CaptureQueriesContext(connection) as queries:
        updated = bulk_update(rows, ["attempts", "last_error", "headers", "next_attempt_at", "published_at"])

    assert updated == count
    assert len(queries.captured_queries) == 1
    stored = {r.event_id: r for r in OutboxMessage.objects.filter(event_id__startswith="bulk-")}
    for i in range(count):
        row = stored[f"bulk-{i}"]
        assert row.attempts == i + 1
        assert row.last_error == f"error 'quoted' {i}"
        assert row.headers == [["ce_type", f"t{i}"], ["n", {"nested": i}]]
        assert row.next_attempt_at == at + timedelta(seconds=i)
        assert row.published_at == (None if i % 2 else at)


def test_rows_not_passed_are_left_alone():
    first, second = _rows(2)
    first.attempts = 7

    bulk_update([first], ["attempts"])

    assert OutboxMessage.objects.get(pk=first.pk).attempts == 7
    assert OutboxMessage.objects.get(pk=second.pk).attempts == 0


def test_nothing_to_write_runs_no_statement():
    with CaptureQueriesContext(connection) as queries:
        assert bulk_update([], ["attempts"]) == 0
    assert queries.captured_queries == []
