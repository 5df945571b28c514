"""Sessions: a token family per login; a rotated refresh token that comes back ends its whole family."""

from __future__ import annotations

import jwt
import pytest

from common.auth import verify_access_token
from users.models import TokenFamily, UserEvent
from users.tests.factories import UserFactory, login, refresh
from users.tokens import UserRefreshToken

pytestmark = pytest.mark.django_db


def family_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["fam"]


@pytest.mark.parametrize("first", ["owner", "thief"])
def test_a_stolen_refresh_token_that_was_used_is_worthless_to_both_holders(api, first):
    user = UserFactory()
    stolen = login(api, email=user.email).json()["refresh"]  # the thief copies it; both hold the same token

    winner = refresh(api, stolen).json()  # whoever refreshes first gets the next pair of the session...
    descendant = refresh(api, winner["refresh"]).json()  # ...and goes on rotating it
    loser = refresh(api, stolen)  # the other one comes with the used token

    assert loser.status_code == 401
    assert loser.json() == {
        "code": "token_reused",
        "message": "This refresh token was already used; its session has been ended everywhere. Log in again.",
        "details": {},
    }
    for token in (descendant["refresh"], winner["refresh"], stolen):  # every token descended from the login
        answer = refresh(api, token)
        assert (answer.status_code, answer.json()["code"]) == (401, "token_revoked")
    family = TokenFamily.objects.get(pk=family_of(stolen))
    assert (family.revoked_reason, family.revoked_at is not None) == ("reused", True)
    event = UserEvent.objects.get(user=user, kind="refresh_token_reused")
    assert event.data["family"] == str(family.id)


def test_a_reuse_ends_only_its_own_session(api):
    user = UserFactory()
    phone = login(api, email=user.email).json()
    laptop = login(api, email=user.email).json()

    refresh(api, phone["refresh"])
    reused = refresh(api, phone["refresh"])
    laptop_next = refresh(api, laptop["refresh"])

    assert reused.json()["code"] == "token_reused"
    assert laptop_next.status_code == 200
    assert family_of(laptop_next.json()["refresh"]) == family_of(laptop["refresh"]) != family_of(phone["refresh"])


def test_each_login_starts_a_family_its_rotations_keep_and_access_tokens_do_not_carry(api):
    user = UserFactory()
    first = login(api, email=user.email).json()

    rotated = refresh(api, first["refresh"]).json()

    assert family_of(rotated["refresh"]) == family_of(first["refresh"])
    family = TokenFamily.objects.get(user=user)
    assert str(family.id) == family_of(first["refresh"])
    assert family.expires_at == UserRefreshToken(rotated["refresh"]).expires_at
    assert "fam" not in verify_access_token(rotated["access"])


def test_logout_ends_the_session_for_every_token_of_it(api):
    user = UserFactory()
    first = login(api, email=user.email).json()
    second = refresh(api, first["refresh"]).json()

    logout = api.post("/api/auth/logout", {"refresh": second["refresh"]}, format="json")

    assert logout.status_code == 204
    assert TokenFamily.objects.get(user=user).revoked_reason == "logout"
    assert refresh(api, second["refresh"]).json()["code"] == "token_revoked"


def test_a_refresh_token_from_before_families_is_refused(api):
    user = UserFactory()
    legacy = UserRefreshToken.for_user(user)  # as tokens were issued before: no `fam` claim

    response = refresh(api, str(legacy))
    logout = api.post("/api/auth/logout", {"refresh": str(legacy)}, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "code": "token_invalid",
        "message": "This refresh token predates sessions; log in again.",
        "details": {},
    }
    assert logout.status_code == 204
