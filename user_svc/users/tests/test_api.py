"""The account API end to end in-process: registration, login, tokens, profile, password, errors."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from common.auth import verify_access_token
from common.outbox.models import OutboxMessage
from users import keys
from users.api.views import REGISTER_ACCEPTED
from users.models import TokenFamily, User, UserEvent
from users.services import CURRENT_PASSWORD_REQUIRED, CURRENT_PASSWORD_WRONG, EMAIL_TAKEN
from users.tests.factories import (
    PASSWORD,
    UserFactory,
    bearer,
    confirm,
    login,
    mailed_token,
    refresh,
    register,
    unique_email,
)

pytestmark = pytest.mark.django_db


def outbox(event_type: str, user_id) -> list[dict]:
    rows = OutboxMessage.objects.filter(event_type=event_type, key=str(user_id)).order_by("id")
    return [json.loads(bytes(row.payload))["data"] for row in rows]


def kinds(user_id) -> list[str]:
    return list(UserEvent.objects.filter(user_id=user_id).order_by("id").values_list("kind", flat=True))


def test_register_login_me_refresh_logout_then_refresh_fails(api):
    email = unique_email()

    registered = register(api, email=email, display_name="Ada")
    logged_in = login(api, email=email)
    tokens = logged_in.json()
    user_id = tokens["user"]["id"]
    me = api.get("/api/users/me", **bearer(tokens["access"]))
    refreshed = refresh(api, tokens["refresh"])
    new = refreshed.json()
    logout = api.post("/api/auth/logout", {"refresh": new["refresh"]}, format="json")
    after_logout = refresh(api, new["refresh"])

    assert registered.status_code == 202
    assert registered.json() == {"message": REGISTER_ACCEPTED}
    assert logged_in.status_code == 200  # before the address is confirmed: logins do not wait for it
    assert set(tokens) == {"access", "refresh", "token_type", "expires_in", "user"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 900)
    assert tokens["user"] == {
        "id": user_id,
        "email": email,
        "email_confirmed_at": None,
        "display_name": "Ada",
        "created_at": tokens["user"]["created_at"],
        "updated_at": tokens["user"]["updated_at"],
    }
    assert str(User.objects.get(email=email).id) == user_id
    assert me.status_code == 200
    assert (me.json()["id"], me.json()["email"], me.json()["display_name"]) == (user_id, email, "Ada")
    assert refreshed.status_code == 200
    assert new["refresh"] != tokens["refresh"] and new["access"] != tokens["access"]
    assert api.get("/api/users/me", **bearer(new["access"])).json()["id"] == user_id
    assert logout.status_code == 204
    assert after_logout.status_code == 401
    assert after_logout.json() == {
        "code": "token_revoked",
        "message": "This refresh token has been revoked.",
        "details": {},
    }
    assert kinds(user_id) == ["registered", "logged_in"]
    assert outbox("user.logged_in", user_id) == [{"user_id": user_id}]


def test_logout_twice_is_idempotent(api):
    user = UserFactory()
    refresh = login(api, email=user.email).json()["refresh"]

    first = api.post("/api/auth/logout", {"refresh": refresh}, format="json")
    second = api.post("/api/auth/logout", {"refresh": refresh}, format="json")

    assert (first.status_code, second.status_code) == (204, 204)


def test_wrong_password_is_401_and_nothing_is_issued_or_recorded(api):
    user = UserFactory()

    response = login(api, email=user.email, password="not-the-password")

    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "No active account with these credentials.",
        "details": {},
    }
    assert OutstandingToken.objects.count() == 0
    assert kinds(user.id) == []
    assert outbox("user.logged_in", user.id) == []
    user.refresh_from_db()
    assert user.last_login is None


def test_unknown_email_gets_the_same_401_as_a_wrong_password(api):
    response = login(api, email=unique_email())

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_weak_password_is_400_with_the_validators_messages_and_nothing_is_written(api):
    response = register(api, password="12345678")

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {
        "password": ["This password is too common.", "This password is entirely numeric."]
    }
    assert User.objects.count() == 0
    assert UserEvent.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_password_similar_to_the_email_is_400(api):
    response = register(api, email="margaretthatcher@example.com", password="margaretthatcher")

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {"password": ["The password is too similar to the email."]}


def test_missing_and_malformed_fields_are_400_with_field_messages(api):
    response = api.post("/api/auth/register", {"email": "not-an-email"}, format="json")

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {
        "email": ["Enter a valid email address."],
        "password": ["This field is required."],
    }


def test_email_is_normalised_and_login_ignores_its_case(api):
    registered = register(api, email="  Grace.Hopper@Example.COM ")

    logged_in = login(api, email="GRACE.HOPPER@example.com")

    assert registered.status_code == 202
    assert logged_in.status_code == 200
    assert logged_in.json()["user"]["email"] == "grace.hopper@example.com"
    assert logged_in.json()["user"]["id"] == str(User.objects.get(email="grace.hopper@example.com").id)


def test_me_without_a_token_is_401(api):
    response = api.get("/api/users/me")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_patch_me_publishes_the_fields_that_changed(api):
    user = UserFactory(display_name="Old")
    access = login(api, email=user.email).json()["access"]
    new_email = unique_email("renamed")

    response = api.patch(
        "/api/users/me",
        {"display_name": "New", "email": new_email.upper(), "current_password": PASSWORD},
        format="json",
        **bearer(access),
    )
    unchanged = api.patch("/api/users/me", {"display_name": "New"}, format="json", **bearer(access))

    assert response.status_code == 200
    assert (response.json()["display_name"], response.json()["email"]) == ("New", new_email)
    assert unchanged.status_code == 200
    assert outbox("user.updated", user.id) == [{"user_id": str(user.id), "changed": ["email", "display_name"]}]
    event = UserEvent.objects.get(user=user, kind="updated")
    assert (event.actor_id, event.data) == (user.id, {"changed": ["email", "display_name"]})


def test_patch_me_to_a_taken_email_is_400_and_changes_nothing(api):
    other = UserFactory()
    user = UserFactory()
    original_email = user.email
    access = login(api, email=user.email).json()["access"]

    response = api.patch(
        "/api/users/me",
        {"email": other.email.upper(), "display_name": "X", "current_password": PASSWORD},
        format="json",
        **bearer(access),
    )

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {"email": [EMAIL_TAKEN]}
    user.refresh_from_db()
    assert (user.email, user.display_name) == (original_email, "Trader")
    assert outbox("user.updated", user.id) == []
    assert kinds(user.id) == ["logged_in"]


@pytest.mark.parametrize(
    ("given", "message"),
    [({}, CURRENT_PASSWORD_REQUIRED), ({"current_password": "not-the-password"}, CURRENT_PASSWORD_WRONG)],
    ids=["missing", "wrong"],
)
def test_changing_the_email_without_the_current_password_is_400_and_changes_nothing(api, sent, given, message):
    user = UserFactory()
    original_email = user.email
    access = login(api, email=user.email).json()["access"]

    with sent() as mails:
        response = api.patch(
            "/api/users/me", {"email": unique_email("thief"), **given}, format="json", **bearer(access)
        )

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {"current_password": [message]}
    user.refresh_from_db()
    assert user.email == original_email
    assert outbox("user.updated", user.id) == []
    assert mails == []


def test_a_wrong_current_password_is_refused_before_the_new_address_is_looked_at(api):
    other = UserFactory()
    access = login(api, email=UserFactory().email).json()["access"]

    response = api.patch(
        "/api/users/me", {"email": other.email, "current_password": "wrong"}, format="json", **bearer(access)
    )

    assert response.json()["details"]["fields"] == {"current_password": [CURRENT_PASSWORD_WRONG]}


def test_the_display_name_changes_without_the_password(api):
    user = UserFactory()
    access = login(api, email=user.email).json()["access"]

    same_email = api.patch(
        "/api/users/me", {"email": user.email.upper(), "display_name": "Renamed"}, format="json", **bearer(access)
    )

    assert same_email.status_code == 200
    assert same_email.json()["display_name"] == "Renamed"


def test_a_new_email_is_unconfirmed_and_gets_a_confirmation_mail(api, sent):
    user = UserFactory(email_confirmed_at=timezone.now())
    access = login(api, email=user.email).json()["access"]
    new_email = unique_email("moved")

    with sent() as mails:
        response = api.patch(
            "/api/users/me", {"email": new_email, "current_password": PASSWORD}, format="json", **bearer(access)
        )
    confirmed = confirm(api, mailed_token(mails[0]))

    assert (response.status_code, response.json()["email_confirmed_at"]) == (200, None)
    assert [(m.to, m.subject) for m in mails] == [([new_email], "Confirm your Paper Trading address")]
    assert confirmed.status_code == 200
    assert confirmed.json()["email"] == new_email


def test_password_change_revokes_every_refresh_token_and_the_old_password(api):
    user = UserFactory()
    first = login(api, email=user.email).json()
    second = login(api, email=user.email).json()
    new_password = "Another-Strong-Pass-7"

    response = api.post(
        "/api/users/me/password",
        {"current_password": PASSWORD, "new_password": new_password},
        format="json",
        **bearer(first["access"]),
    )

    assert response.status_code == 200
    for old in (first, second):
        assert api.post("/api/auth/refresh", {"refresh": old["refresh"]}, format="json").status_code == 401
    assert api.post("/api/auth/refresh", {"refresh": response.json()["refresh"]}, format="json").status_code == 200
    assert login(api, email=user.email).status_code == 401
    assert login(api, email=user.email, password=new_password).status_code == 200
    assert "password_changed" in kinds(user.id)
    assert outbox("user.updated", user.id) == [{"user_id": str(user.id), "changed": ["password"]}]


def test_password_change_with_a_wrong_current_password_is_400_and_changes_nothing(api):
    user = UserFactory()
    tokens = login(api, email=user.email).json()

    response = api.post(
        "/api/users/me/password",
        {"current_password": "wrong", "new_password": "Another-Strong-Pass-7"},
        format="json",
        **bearer(tokens["access"]),
    )

    assert response.status_code == 400
    assert response.json()["details"]["fields"] == {"current_password": ["Your current password is incorrect."]}
    assert api.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code == 200
    assert outbox("user.updated", user.id) == []
    assert "password_changed" not in kinds(user.id)


def test_password_change_to_a_weak_password_is_400(api):
    user = UserFactory()
    access = login(api, email=user.email).json()["access"]

    response = api.post(
        "/api/users/me/password",
        {"current_password": PASSWORD, "new_password": "short"},
        format="json",
        **bearer(access),
    )

    assert response.status_code == 400
    assert list(response.json()["details"]["fields"]) == ["new_password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_refresh_refuses_garbage_and_access_tokens(api):
    user = UserFactory()
    access = login(api, email=user.email).json()["access"]

    garbage = api.post("/api/auth/refresh", {"refresh": "not.a.token"}, format="json")
    wrong_type = api.post("/api/auth/refresh", {"refresh": access}, format="json")

    assert (garbage.status_code, garbage.json()["code"]) == (401, "token_invalid")
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (401, "token_invalid")


def test_issued_tokens_carry_exactly_what_common_auth_verifies(api, settings):
    user = UserFactory()
    tokens = login(api, email=user.email).json()

    header = jwt.get_unverified_header(tokens["access"])
    claims = verify_access_token(tokens["access"])
    refresh_claims = jwt.decode(
        tokens["refresh"], keys.public_key(), algorithms=["RS256"], audience=settings.JWT_AUDIENCE
    )

    assert header == {"alg": "RS256", "typ": "JWT", "kid": keys.key_id()}
    assert claims["sub"] == str(user.id)
    assert (claims["iss"], claims["aud"], claims["token_type"]) == (
        "paper-trading/user_svc",
        "paper-trading",
        "access",
    )
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert refresh_claims["exp"] - refresh_claims["iat"] == 7 * 24 * 3600
    assert refresh_claims["token_type"] == "refresh"
    with pytest.raises(AuthenticationFailed, match="not an access token"):
        verify_access_token(tokens["refresh"])


def test_the_signing_key_matches_the_public_key_every_service_is_given(settings):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    given = load_pem_public_key(settings.JWT_PUBLIC_KEY.encode()).public_numbers()

    assert keys.public_key().public_numbers() == given


def test_token_lifetimes_are_settings(api, settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=2)}
    user = UserFactory()

    tokens = login(api, email=user.email).json()
    claims = verify_access_token(tokens["access"])

    assert tokens["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


def test_a_deactivated_account_cannot_log_in_refresh_or_read_me(api):
    from users.services import user_deactivate

    user = UserFactory()
    tokens = login(api, email=user.email).json()

    user_deactivate(user_id=user.id, actor=None)

    assert login(api, email=user.email).status_code == 401
    refreshed = refresh(api, tokens["refresh"])
    assert (refreshed.status_code, refreshed.json()["code"]) == (401, "token_invalid")
    assert TokenFamily.objects.get(user=user).revoked_reason == "deactivated"
    me = api.get("/api/users/me", **bearer(tokens["access"]))
    assert (me.status_code, me.json()["code"]) == (401, "account_inactive")
    assert outbox("user.deactivated", user.id) == [{"user_id": str(user.id)}]


def test_the_api_root_lists_the_operations(api):
    endpoints = api.get("/api/").json()["endpoints"]

    assert endpoints["login"].endswith("/api/auth/login")
    assert endpoints["jwks"].endswith("/.well-known/jwks.json")


def test_expired_refresh_tokens_and_sessions_are_purged_and_live_ones_kept(api):
    from users.services import token_purge_expired

    user = UserFactory()
    login(api, email=user.email)
    login(api, email=user.email)
    past = timezone.now() - timedelta(seconds=1)
    OutstandingToken.objects.filter(pk=OutstandingToken.objects.order_by("id").first().pk).update(expires_at=past)
    TokenFamily.objects.filter(pk=TokenFamily.objects.order_by("created_at").first().pk).update(expires_at=past)

    assert token_purge_expired() == 2
    assert OutstandingToken.objects.count() == 1
    assert TokenFamily.objects.count() == 1
