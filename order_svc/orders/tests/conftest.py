"""Fixtures of order_svc's tests: the seeded symbols, users, API clients, and readers of what was published."""

from __future__ import annotations

import importlib
import uuid

import pytest
from rest_framework.test import APIClient

from common.testing.auth import bearer
from common.testing.outbox import published  # noqa: F401 - the tests import it from here

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
