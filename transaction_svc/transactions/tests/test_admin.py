"""Operators' admin: the ledger is browsable by date and read-only; order events are listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from transactions.models import Transaction
from transactions.services import transaction_event_record
from transactions.tests.factories import record_fill

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-not-used"))
    return client


def test_the_transactions_changelist_drills_down_by_month_and_lists_fills(staff_client):
    record = record_fill(fill_id="f-admin", executed_at=datetime.now(UTC))
    now = record.executed_at

    index = staff_client.get("/admin/transactions/transaction/")
    month = staff_client.get(
        f"/admin/transactions/transaction/?executed_at__year={now.year}&executed_at__month={now.month}"
    )

    assert index.status_code == 200 and month.status_code == 200
    assert str(record.id) in month.content.decode()
    assert "Add transaction" not in index.content.decode()


def test_a_transaction_cannot_be_added_changed_or_deleted_in_the_admin(staff_client):
    record = record_fill()

    view = staff_client.get(f"/admin/transactions/transaction/{record.pk}/change/")
    add = staff_client.get("/admin/transactions/transaction/add/")
    delete = staff_client.post(f"/admin/transactions/transaction/{record.pk}/delete/", {"post": "yes"})
    change = staff_client.post(f"/admin/transactions/transaction/{record.pk}/change/", {"symbol": "X"})

    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert (add.status_code, delete.status_code, change.status_code) == (403, 403, 403)
    assert Transaction.objects.get(pk=record.pk).symbol == "BTCUSDT"


def test_order_events_are_listed_in_the_admin(staff_client):
    transaction_event_record(
        event_id="evt-admin",
        event_type="order.rejected",
        order_id="o-admin",
        user_id=record_fill().user_id,
        symbol="BTCUSDT",
        reason="insufficient balance",
        data={},
        occurred_at=datetime.now(UTC),
    )

    page = staff_client.get("/admin/transactions/transactionevent/?event_type=order.rejected")

    assert page.status_code == 200
    assert "o-admin" in page.content.decode()
