"""Login throttling in the real shared Redis: per account and per client address, 429 past the limit."""

from __future__ import annotations

import pytest

from users.models import UserEvent
from users.tests.factories import PASSWORD, UserFactory, login, unique_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.LOGIN_THROTTLE_ACCOUNT_FAILURES = 3
    settings.LOGIN_THROTTLE_IP_FAILURES = 5
    settings.LOGIN_THROTTLE_WINDOW_S = 600
    settings.LOGIN_THROTTLE_TRUSTED_PROXIES = 0  # a service exposed directly: X-Forwarded-For is not trusted
    return settings


def test_the_failed_login_after_the_account_limit_gets_429_even_with_the_right_password(api, limits):
    user = UserFactory()

    failures = [login(api, email=user.email, password="wrong").status_code for _ in range(3)]
    throttled = login(api, email=user.email, password="wrong")
    right_password = login(api, email=user.email.upper())

    assert failures == [401, 401, 401]
    assert throttled.status_code == 429
    body = throttled.json()
    assert (body["code"], body["details"]["scope"]) == ("throttled", "account")
    assert 590 <= body["details"]["retry_after_s"] <= 600
    assert (
        body["message"] == f"Too many failed login attempts; try again in {body['details']['retry_after_s']} seconds."
    )
    assert throttled["Retry-After"] == str(body["details"]["retry_after_s"])
    assert right_password.status_code == 429
    assert not UserEvent.objects.filter(user=user, kind="logged_in").exists()


def test_the_failed_login_after_the_address_limit_gets_429_for_any_account(api, limits):
    addr = {"REMOTE_ADDR": "203.0.113.7"}
    user = UserFactory()

    failures = [login(api, email=unique_email(), password="wrong", **addr).status_code for _ in range(5)]
    throttled = login(api, email=user.email, password=PASSWORD, **addr)
    elsewhere = login(api, email=user.email, password=PASSWORD, REMOTE_ADDR="203.0.113.8")

    assert failures == [401] * 5
    assert (throttled.status_code, throttled.json()["details"]["scope"]) == (429, "ip")
    assert elsewhere.status_code == 200


def test_a_successful_login_clears_the_account_count(api, limits):
    user = UserFactory()

    before = [login(api, email=user.email, password="wrong").status_code for _ in range(2)]
    success = login(api, email=user.email)
    after = [login(api, email=user.email, password="wrong").status_code for _ in range(3)]

    assert before == [401, 401] and success.status_code == 200
    assert after == [401, 401, 401]
    assert login(api, email=user.email, password="wrong").status_code == 429


def test_a_spoofed_forwarded_for_does_not_escape_the_address_limit(api, limits):
    failures = [
        login(api, email=unique_email(), password="wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(5)
    ]
    throttled = login(api, email=unique_email(), password="wrong", HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert failures == [401] * 5
    assert throttled.status_code == 429


def test_behind_one_trusted_proxy_the_forwarded_address_is_the_one_counted(api, limits):
    limits.LOGIN_THROTTLE_TRUSTED_PROXIES = 1
    for _ in range(5):
        login(api, email=unique_email(), password="wrong", HTTP_X_FORWARDED_FOR="evil, 198.51.100.1")

    same = login(api, email=unique_email(), password="wrong", HTTP_X_FORWARDED_FOR="other, 198.51.100.1")
    other = login(api, email=unique_email(), password="wrong", HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert same.status_code == 429
    assert other.status_code == 401
