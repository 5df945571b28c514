"""Fixtures of portfolio_svc's tests: the seeded catalogue, API clients, and what the outbox holds."""

from __future__ import annotations

import importlib
import uuid

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from common.testing.auth import bearer
from common.testing.outbox import published  # noqa: F401 - the tests import it from here
from portfolios.services import assets_cache_clear

_seed = importlib.import_module("portfolios.migrations.0002_seed_assets_and_symbols")


@pytest.fixture(autouse=True)
def catalogue(request):
    """The assets and symbols the migration seeds (a transactional test's flush empties every table).

    Only for tests marked django_db: a test that must not touch the database keeps that guarantee.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    _seed.seed(apps, None)
    assets_cache_clear()  # the per-process catalogue cache reads this test's seed


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def api():
    """An API client; `api.as_user(user_id)` authenticates it with a real RS256 access token."""
    client = APIClient()

    def as_user(uid: uuid.UUID) -> APIClient:
        client.credentials(HTTP_AUTHORIZATION=bearer(uid)["Authorization"])
        return client

    client.as_user = as_user
    return client
