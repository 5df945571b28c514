"""Fixtures of order_svc's tests: the seeded symbols, users, API clients, and readers of what was published."""

from __future__ import annotations

import importlib
import json
import uuid

import pytest
from rest_framework.test import APIClient

from common.outbox.models import OutboxMessage
from common.testing.auth import bearer

seed_migration = importlib.import_module("orders.migrations.0002_seed_symbols")


@pytest.fixture
def symbols(db):
    """The catalogue the data migration seeds (a transactional test's flush removes it, so it is put back)."""
    from django.apps import apps

    seed_migration.seed(apps, None)


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def api(user_id) -> APIClient:
    client = APIClient()
    client.credentials(**{"HTTP_AUTHORIZATION": bearer(user_id)["Authorization"]})
    return client


def published(type_: str, **match: str) -> list[dict]:
    """The data of every outbox row of this type (oldest first), narrowed to rows whose data has `match`."""
    rows = []
    for message in OutboxMessage.objects.filter(event_type=type_).order_by("id"):
        data = json.loads(bytes(message.payload))["data"]
        if all(data.get(k) == v for k, v in match.items()):
            rows.append(data)
    return rows
