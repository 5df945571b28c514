"""Another service's verifier (common.auth) across user_svc's key rotations: keys by `kid` from the JWK set file,
old tokens valid until their key retires, unknown kids refused cheaply, and a small clock leeway."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common import auth, jwt_keys
from common.testing.auth import sign

USER_ID = uuid.UUID("0b5e7e6e-4d36-4f4e-9a0e-6d7f2b0c1a11")


class WhoAmI(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user_id": str(request.user.id)})


def call(token: str):
    return WhoAmI.as_view()(APIRequestFactory().get("/whoami", HTTP_AUTHORIZATION=f"Bearer {token}"))


@pytest.fixture
def keys(tmp_path, settings):
    """A key folder of user_svc that this process verifies with, as every service does."""
    jwt_keys.ensure_key_pair(tmp_path)
    settings.JWT_JWKS_FILE = str(tmp_path / "jwks.json")
    auth._verified.clear()
    return tmp_path


def claims(*, lifetime: timedelta = timedelta(minutes=5), now: datetime | None = None, **extra) -> dict:
    now = now or datetime.now(UTC)
    return {
        "token_type": "access",
        "sub": str(USER_ID),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "iss": "paper-trading/user_svc",
        "aud": "paper-trading",
        **extra,
    }


def token_of(folder, **kwargs) -> str:
    return sign(claims(**kwargs), (folder / "private.pem").read_text())


def test_a_rotation_keeps_the_old_key_s_tokens_valid_and_trusts_the_new_key_s(keys):
    old = token_of(keys)
    assert call(old).status_code == 200

    jwt_keys.rotate(keys, retire_after_s=3600)
    new = token_of(keys)

    assert jwt_keys.jwk_of(jwt_keys._signing_key(keys).public_key())["kid"] != auth.token_key_id(old)
    assert call(new).status_code == 200  # an unknown kid: the verifier read the file again and found it
    assert call(old).status_code == 200
    auth._verified.clear()
    assert call(old).status_code == 200  # verified afresh, not only from the cache


def test_once_the_old_key_retires_its_tokens_are_refused_even_from_the_cache(keys, monkeypatch):
    old = token_of(keys, lifetime=timedelta(days=30))
    assert call(old).status_code == 200  # now in the cache of verified tokens
    jwt_keys.rotate(keys, retire_after_s=60)
    new = token_of(keys, lifetime=timedelta(days=30))
    assert call(new).status_code == 200

    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)

    response = call(old)
    assert response.status_code == 401
    assert response.data["code"] == "token_invalid"
    assert "retired" in response.data["message"]
    assert call(new).status_code == 200


def test_a_key_dropped_from_the_file_is_distrusted_at_the_next_check(keys, monkeypatch):
    old = token_of(keys)
    assert call(old).status_code == 200
    jwt_keys.rotate(keys, retire_after_s=0)  # a leaked key: dropped at once
    monkeypatch.setattr(auth.TrustedKeys, "RECHECK_S", 0.0)

    assert call(old).status_code == 401
    assert call(token_of(keys)).status_code == 200


def test_a_token_signed_by_a_key_of_another_folder_is_refused_with_the_platform_s_401(keys, tmp_path_factory):
    stranger = tmp_path_factory.mktemp("stranger")
    jwt_keys.ensure_key_pair(stranger)

    response = call(token_of(stranger))

    assert response.status_code == 401
    assert response.render()["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert (body["code"], body["details"]) == ("token_invalid", {})
    assert "invalid token: unknown or retired signing key" in body["message"]


def test_a_token_with_a_known_kid_but_another_key_s_signature_is_refused(keys, tmp_path_factory):
    stranger = tmp_path_factory.mktemp("stranger")
    jwt_keys.ensure_key_pair(stranger)
    kid = auth.token_key_id(token_of(keys))
    forged = jwt.encode(claims(), (stranger / "private.pem").read_text(), algorithm="RS256", headers={"kid": kid})

    response = call(forged)

    assert (response.status_code, response.data["code"]) == (401, "token_invalid")
    assert "Signature verification failed" in response.data["message"]


def test_a_token_without_a_kid_is_refused(keys):
    token = jwt.encode(claims(), (keys / "private.pem").read_text(), algorithm="RS256")

    response = call(token)

    assert (response.status_code, response.data["code"]) == (401, "token_invalid")
    assert "invalid token: no key id (kid) in its header" in response.data["message"]


def test_made_up_kids_never_make_the_verifier_read_the_file_again(keys, monkeypatch):
    assert call(token_of(keys)).status_code == 200
    reads = []
    real = jwt_keys.read_jwks
    monkeypatch.setattr(jwt_keys, "read_jwks", lambda path: (reads.append(path), real(path))[1])
    pem = (keys / "private.pem").read_text()

    for _ in range(50):
        forged = jwt.encode(claims(), pem, algorithm="RS256", headers={"kid": uuid.uuid4().hex})
        assert call(forged).status_code == 401

    assert reads == []  # a stat each, no read: the file did not change
    jwt_keys.rotate(keys, retire_after_s=60)
    reads.clear()
    assert call(token_of(keys)).status_code == 200
    assert call(token_of(keys)).status_code == 200
    assert len(reads) == 1  # it did change: read once


def test_without_a_jwk_set_the_one_public_key_verifies_by_its_thumbprint(keys, settings):
    settings.JWT_JWKS_FILE = ""
    settings.JWT_PUBLIC_KEY = (keys / "public.pem").read_text()

    assert call(token_of(keys)).status_code == 200
    jwt_keys.rotate(keys, retire_after_s=60)
    assert call(token_of(keys)).status_code == 401  # the rotated key is not the configured one


def test_the_clock_leeway_is_thirty_seconds(settings):
    assert settings.JWT_LEEWAY_S == 30


@pytest.mark.parametrize(
    ("shift", "accepted"),
    [
        (timedelta(seconds=-5), True),  # expired 5 s ago: within the leeway
        (timedelta(minutes=-5), False),
    ],
)
def test_the_leeway_accepts_a_token_expired_seconds_ago_but_not_minutes_ago(keys, shift, accepted):
    issued = datetime.now(UTC) + shift - timedelta(minutes=1)
    token = token_of(keys, now=issued, lifetime=timedelta(minutes=1))

    response = call(token)

    assert response.status_code == (200 if accepted else 401)
    if not accepted:
        assert response.data["code"] == "token_expired"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
@pytest.mark.parametrize(("ahead", "accepted"), [(timedelta(seconds=5), True), (timedelta(minutes=5), False)])
def test_the_leeway_accepts_a_token_from_a_clock_seconds_ahead_but_not_minutes(keys, claim, ahead, accepted):
    token = token_of(keys, **{claim: datetime.now(UTC) + ahead})

    assert call(token).status_code == (200 if accepted else 401)


def test_a_cached_token_is_refused_once_past_its_expiry_and_the_leeway(keys, monkeypatch):
    token = token_of(keys, lifetime=timedelta(seconds=30))
    assert call(token).status_code == 200
    now = time.time()

    monkeypatch.setattr(auth.time, "time", lambda: now + 30 + 25)
    assert call(token).status_code == 200  # from the cache: 25 s past exp is within the leeway
    monkeypatch.setattr(auth.time, "time", lambda: now + 30 + 31)
    response = call(token)
    assert (response.status_code, response.data["code"]) == (401, "token_expired")
