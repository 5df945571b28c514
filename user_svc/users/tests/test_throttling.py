"""Password throttling in the real shared Redis: per address, per account from an address, and per account slowed
down (never locked), with logins and the current-password checks counting alike."""

from __future__ import annotations

import time

import pytest

from users.models import UserEvent
from users.tests.factories import PASSWORD, UserFactory, bearer, login, unique_email

pytestmark = pytest.mark.django_db

STRANGER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.10"}


@pytest.fixture
def limits(settings):
    settings.LOGIN_THROTTLE_ACCOUNT_FAILURES = 3
    settings.LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER = 10
    settings.LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S = 60
    settings.LOGIN_THROTTLE_IP_FAILURES = 5
    settings.LOGIN_THROTTLE_WINDOW_S = 600
    settings.LOGIN_THROTTLE_TRUSTED_PROXIES = 0  # a service exposed directly: X-Forwarded-For is not trusted
    return settings


def assert_throttled(response, scope: str, *, at_most: int) -> int:
    assert response.status_code == 429, response.content
    body = response.json()
    retry_after = body["details"]["retry_after_s"]
    assert body == {
        "code": "throttled",
        "message": f"Too many failed password attempts; try again in {retry_after} seconds.",
        "details": {"scope": scope, "retry_after_s": retry_after},
    }
    assert 1 <= retry_after <= at_most
    assert response["Retry-After"] == str(retry_after)
    assert response["Content-Type"].startswith("application/json")
    return retry_after


def test_a_strangers_failures_shut_out_their_address_from_the_account_never_the_owner(api, limits):
    user = UserFactory()

    failures = [login(api, email=user.email, password="wrong", **STRANGER).status_code for _ in range(3)]
    throttled = login(api, email=user.email, password="wrong", **STRANGER)
    stranger_with_the_password = login(api, email=user.email, **STRANGER)
    owner = login(api, email=user.email.upper(), **OWNER)

    assert failures == [401, 401, 401]
    assert assert_throttled(throttled, "account_ip", at_most=600) >= 590
    assert_throttled(stranger_with_the_password, "account_ip", at_most=600)
    assert owner.status_code == 200
    assert UserEvent.objects.filter(user=user, kind="logged_in").count() == 1


def test_failures_from_many_addresses_slow_the_account_down_without_locking_it(api, limits):
    limits.LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER = 3
    user = UserFactory()
    known = {"REMOTE_ADDR": "198.51.100.1"}
    assert login(api, email=user.email, **known).status_code == 200  # the owner at home, before the attack

    spread = [login(api, email=user.email, password="wrong", REMOTE_ADDR=f"203.0.113.{i}") for i in range(4)]
    held = login(api, email=user.email, password="wrong", REMOTE_ADDR="203.0.113.50")
    owner_at_home = login(api, email=user.email, **known)
    owner_elsewhere = login(api, email=user.email, REMOTE_ADDR="192.0.2.77")
    time.sleep(1.1)  # the delay after the 4th failure, the first past the limit: 1 s
    owner_elsewhere_later = login(api, email=user.email, REMOTE_ADDR="192.0.2.77")
    next_guess = login(api, email=user.email, password="wrong", REMOTE_ADDR="203.0.113.51")

    assert [r.status_code for r in spread] == [401] * 4  # the 4th goes through and shuts the account for 1 s
    assert assert_throttled(held, "account", at_most=1) == 1
    assert owner_at_home.status_code == 200  # an address the account knows is not held
    assert assert_throttled(owner_elsewhere, "account", at_most=1) == 1
    assert owner_elsewhere_later.status_code == 200
    # Each failure past the limit doubles the delay (the owner's way in went through the gate as the 5th attempt).
    assert assert_throttled(next_guess, "account", at_most=2) == 2


def test_being_held_at_the_accounts_gate_costs_no_failure(api, limits):
    limits.LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER = 0
    limits.LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S = 30
    user = UserFactory()
    owner = {"REMOTE_ADDR": "192.0.2.9"}

    first = login(api, email=user.email, password="wrong", REMOTE_ADDR="203.0.113.1")
    waiting = [login(api, email=user.email, **owner) for _ in range(6)]

    assert first.status_code == 401
    for response in waiting:  # held, again and again, yet never shut out of the account by its own waiting
        assert_throttled(response, "account", at_most=1)


def test_the_failed_login_after_the_address_limit_gets_429_for_any_account(api, limits):
    addr = {"REMOTE_ADDR": "203.0.113.7"}
    user = UserFactory()

    failures = [login(api, email=unique_email(), password="wrong", **addr).status_code for _ in range(5)]
    throttled = login(api, email=user.email, password=PASSWORD, **addr)
    elsewhere = login(api, email=user.email, password=PASSWORD, REMOTE_ADDR="203.0.113.8")

    assert failures == [401] * 5
    assert_throttled(throttled, "ip", at_most=600)
    assert elsewhere.status_code == 200


def test_a_successful_login_clears_that_addresss_count_for_the_account(api, limits):
    user = UserFactory()

    before = [login(api, email=user.email, password="wrong").status_code for _ in range(2)]
    success = login(api, email=user.email)
    after = [login(api, email=user.email, password="wrong").status_code for _ in range(3)]

    assert before == [401, 401] and success.status_code == 200
    assert after == [401, 401, 401]
    assert login(api, email=user.email, password="wrong").status_code == 429


def test_wrong_current_passwords_of_a_password_change_count_like_failed_logins(api, limits):
    limits.LOGIN_THROTTLE_IP_FAILURES = 20  # so that the account's limit, not the address's, is the one met
    user = UserFactory()
    access = login(api, email=user.email, **STRANGER).json()["access"]  # a stolen session, used from elsewhere

    def change(current: str):
        body = {"current_password": current, "new_password": "Another-Strong-Pass-7"}
        return api.post("/api/users/me/password", body, format="json", **bearer(access), **STRANGER)

    wrong = [change("wrong").status_code for _ in range(3)]
    throttled = change("wrong")
    even_right = change(PASSWORD)
    login_there = login(api, email=user.email, **STRANGER)
    owner = login(api, email=user.email, **OWNER)

    assert wrong == [400, 400, 400]
    assert_throttled(throttled, "account_ip", at_most=600)
    assert_throttled(even_right, "account_ip", at_most=600)
    assert_throttled(login_there, "account_ip", at_most=600)
    assert owner.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_wrong_current_passwords_of_an_email_change_count_like_failed_logins(api, limits):
    user = UserFactory()
    original = user.email
    access = login(api, email=user.email, **STRANGER).json()["access"]

    def move(current: str):
        body = {"email": unique_email("thief"), "current_password": current}
        return api.patch("/api/users/me", body, format="json", **bearer(access), **STRANGER)

    wrong = [move("wrong").status_code for _ in range(3)]
    throttled = move("wrong")

    assert wrong == [400, 400, 400]
    assert_throttled(throttled, "account_ip", at_most=600)
    user.refresh_from_db()
    assert user.email == original


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
