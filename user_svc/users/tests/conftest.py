"""Fixtures of user_svc's tests: fast password hashing, a private throttle namespace, API clients."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from users.tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _fast_hashing_and_own_cache_namespace(settings):
    # MD5 keeps the suite fast on a shared 2-core machine; hashing itself is Django's concern.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Redis is shared by every run and engineer: a prefix per test keeps throttle counters apart (under the run
    # namespace's own prefix, so its removal deletes them).
    cache = settings.CACHES["default"]
    settings.CACHES = {"default": {**cache, "KEY_PREFIX": f"{cache['KEY_PREFIX']}-test-{uuid.uuid4().hex}"}}


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def password() -> str:
    return PASSWORD
