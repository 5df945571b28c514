"""Registration that tells nobody which addresses have accounts, and addresses confirmed by mail."""

from __future__ import annotations

import statistics
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher

from common.outbox.models import OutboxMessage
from users.api.views import REGISTER_ACCEPTED
from users.mail import CONFIRMATION_SUBJECT, REGISTRATION_ATTEMPT_SUBJECT
from users.models import User, UserEvent
from users.tests.factories import PASSWORD, bearer, confirm, login, mailed_token, register, unique_email

pytestmark = pytest.mark.django_db


def kinds(user_id) -> list[str]:
    return list(UserEvent.objects.filter(user_id=user_id).order_by("id").values_list("kind", flat=True))


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast), counting how many passwords it hashed."""

    algorithm = "counting_md5"
    hashed = 0

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.hashed += 1
        return super().encode(password, salt)


class MeasurableHasher(PBKDF2PasswordHasher):
    """The production hasher with fewer rounds: still far slower than the database work around it."""

    algorithm = "pbkdf2_measurable"
    iterations = 150_000


@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda e: f"  {e.title()} "], ids=["same", "upper", "odd"])
def test_a_taken_email_gets_exactly_the_answer_a_free_one_gets(api, sent, spelling):
    owner_email = unique_email()
    register(api, email=owner_email)
    owner = User.objects.get(email=owner_email)
    free_email = unique_email()

    with sent() as mails:
        free = register(api, email=free_email, display_name="Marker-Free")
        taken = register(api, email=spelling(owner_email), password="Another-Strong-Pass-7", display_name="Marker")

    assert (free.status_code, taken.status_code) == (202, 202)
    assert free.json() == taken.json() == {"message": REGISTER_ACCEPTED}
    assert sorted(free.headers) == sorted(taken.headers)
    assert User.objects.filter(email=owner_email).count() == 1
    owner.refresh_from_db()
    assert (owner.check_password(PASSWORD), owner.display_name) == (True, "Trader")
    assert OutboxMessage.objects.filter(event_type="user.registered").count() == 2  # the owner's and the free one's
    assert kinds(owner.id) == ["registered", "registration_attempted"]
    assert [(m.to, m.subject) for m in mails] == [
        ([free_email], CONFIRMATION_SUBJECT),
        ([owner_email], REGISTRATION_ATTEMPT_SUBJECT),
    ]
    assert "already has an account" in mails[1].body
    assert not [m for m in mails if "Marker" in m.body]  # nothing a stranger typed reaches the address


def test_both_ways_hash_the_password_exactly_once(api, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    taken_email = unique_email()
    register(api, email=taken_email)

    CountingHasher.hashed = 0
    register(api, email=unique_email())
    free = CountingHasher.hashed
    CountingHasher.hashed = 0
    register(api, email=taken_email)
    taken = CountingHasher.hashed

    assert (free, taken) == (1, 1)


def test_both_ways_take_about_the_same_time(api, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.MeasurableHasher"]
    taken_email = unique_email()
    register(api, email=taken_email)

    def timed(email: str) -> float:
        began = time.perf_counter()
        assert register(api, email=email).status_code == 202
        return time.perf_counter() - began

    free, taken = [], []
    for _ in range(3):  # interleaved, so a busy moment of the machine falls on both
        free.append(timed(unique_email()))
        taken.append(timed(taken_email))

    # Without the hash on one way it would be many times faster; the bound leaves room for a loaded machine.
    assert 0.5 < statistics.median(taken) / statistics.median(free) < 2.0, (free, taken)


def test_input_is_refused_the_same_whether_or_not_the_address_is_taken(api):
    taken_email = unique_email()
    register(api, email=taken_email)

    free = register(api, email=unique_email(), password="12345678")
    taken = register(api, email=taken_email, password="12345678")

    assert (free.status_code, taken.status_code) == (400, 400)
    assert free.json() == taken.json()
    assert free.json()["details"]["fields"] == {
        "password": ["This password is too common.", "This password is entirely numeric."]
    }


def test_the_mailed_token_confirms_the_address_once_and_again_changes_nothing(api, sent):
    email = unique_email()
    with sent() as mails:
        register(api, email=email)
    user = User.objects.get(email=email)
    token = mailed_token(mails[0])

    first = confirm(api, token)
    again = confirm(api, token)
    tokens = login(api, email=email).json()

    assert first.status_code == 200
    user.refresh_from_db()
    assert user.email_confirmed_at is not None
    assert first.json() == again.json() == {"email": email, "email_confirmed_at": tokens["user"]["email_confirmed_at"]}
    assert tokens["user"]["email_confirmed_at"] is not None
    assert kinds(user.id) == ["registered", "email_confirmed", "logged_in"]
    assert mails[0].to == [email]


def test_a_forged_expired_or_outdated_token_confirms_nothing(api, sent, settings):
    email = unique_email()
    with sent() as mails:
        register(api, email=email)
    token = mailed_token(mails[0])
    user = User.objects.get(email=email)

    forged = confirm(api, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    garbage = confirm(api, "not-a-token")
    settings.EMAIL_CONFIRMATION_MAX_AGE_S = -1
    expired = confirm(api, token)
    settings.EMAIL_CONFIRMATION_MAX_AGE_S = 3600
    access = login(api, email=email).json()["access"]
    moved = api.patch(
        "/api/users/me", {"email": unique_email("moved"), "current_password": PASSWORD}, format="json", **bearer(access)
    )
    outdated = confirm(api, token)  # names the address the account had

    assert [r.status_code for r in (forged, garbage, expired, outdated)] == [400, 400, 400, 400]
    assert [r.json()["code"] for r in (forged, garbage, expired, outdated)] == [
        "confirmation_invalid",
        "confirmation_invalid",
        "confirmation_expired",
        "confirmation_invalid",
    ]
    assert moved.status_code == 200
    user.refresh_from_db()
    assert user.email_confirmed_at is None
    assert "email_confirmed" not in kinds(user.id)


def test_mail_to_one_address_is_bounded_and_the_answer_stays_the_same(api, sent, settings):
    settings.ACCOUNT_MAIL_LIMIT = 2
    email = unique_email()

    with sent() as mails:
        answers = [register(api, email=email) for _ in range(5)]

    assert {(r.status_code, r.json()["message"]) for r in answers} == {(202, REGISTER_ACCEPTED)}
    assert [m.subject for m in mails] == [CONFIRMATION_SUBJECT, REGISTRATION_ATTEMPT_SUBJECT]
    assert kinds(User.objects.get(email=email).id) == ["registered", *["registration_attempted"] * 4]
