"""Fixtures of user_svc's tests: fast password hashing, a private throttle namespace, tasks run in process, API
clients, and the mail that was sent."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from django.core import mail
from rest_framework.test import APIClient
from user_svc.celery import app as celery_app

from users.tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _fast_hashing_and_own_cache_namespace(settings):
    # MD5 keeps the suite fast on a shared 2-core machine; hashing itself is Django's concern.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Redis is shared by every run and engineer: a prefix per test keeps throttle counters apart (under the run
    # namespace's own prefix, so its removal deletes them).
    cache = settings.CACHES["default"]
    settings.CACHES = {"default": {**cache, "KEY_PREFIX": f"{cache['KEY_PREFIX']}-test-{uuid.uuid4().hex}"}}


@pytest.fixture(autouse=True)
def _tasks_run_where_they_are_queued():
    # A queued task (a mail) runs at once in the test's process, into Django's test outbox, never onto the broker.
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run a block as if committed (its on-commit tasks run) and read the mail it sent: `with sent() as outbox:`."""

    @contextlib.contextmanager
    def block():
        before = len(mail.outbox)
        outbox: list = []
        with django_capture_on_commit_callbacks(execute=True):
            yield outbox
        outbox.extend(mail.outbox[before:])

    return block


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def password() -> str:
    return PASSWORD
