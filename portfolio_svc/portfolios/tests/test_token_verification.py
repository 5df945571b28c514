"""portfolio_svc verifies user_svc's tokens statelessly: only a genuine, live access token for this platform passes.

The view under test uses the service's default authentication (common.auth.JWTAuthentication, from
settings), and no test here may touch the database: verification needs the public key alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common.auth import JWTAuthentication
from common.testing.auth import key_id, mint_access_token, private_key_pem, sign

USER_ID = uuid.UUID("5f0c2a58-3f1e-4d0b-9a59-0d6f0c1d2e3f")


class WhoAmI(APIView):
    """What any endpoint of this service sees of its caller."""

    def get(self, request: Request) -> Response:
        return Response({"user_id": str(request.user.id), "is_staff": request.user.is_staff})


def call(authorization: str | None):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return WhoAmI.as_view()(APIRequestFactory().get("/whoami", **headers))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(doc: dict) -> str:
    return b64url(json.dumps(doc, separators=(",", ":")).encode())


def claims(**overrides) -> dict:
    now = datetime.now(UTC)
    base = {
        "token_type": "access",
        "sub": str(USER_ID),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def signed(payload: dict) -> str:
    return sign(payload)


def kid() -> str:
    return key_id(private_key_pem())


def test_the_service_authenticates_with_common_auth_by_default():
    assert list(api_settings.DEFAULT_AUTHENTICATION_CLASSES) == [JWTAuthentication]
    assert "PRIVATE" not in settings.JWT_PUBLIC_KEY  # this service holds the public key only
    assert not hasattr(settings, "JWT_PRIVATE_KEY")


def test_a_valid_token_from_user_svc_passes_and_names_the_user():
    response = call(f"Bearer {mint_access_token(USER_ID)}")

    assert response.status_code == 200
    assert response.data == {"user_id": str(USER_ID), "is_staff": False}


def _alg_none() -> str:
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid()})}.{segment(claims())}."


def _hs256_with_the_public_key() -> str:
    # Algorithm confusion: an HMAC "signature" keyed with the public key everyone can read.
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid()})}.{segment(claims())}"
    mac = hmac.new(settings.JWT_PUBLIC_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _other_key() -> str:
    # Signed with a stranger's key under the platform key's kid: the signature, not the kid, decides.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": kid()})


def _tampered() -> str:
    header, _, signature = mint_access_token(USER_ID).split(".")
    return f"{header}.{segment(claims(sub=str(uuid.uuid4())))}.{signature}"


BAD_TOKENS = {
    "expired": (lambda: mint_access_token(USER_ID, lifetime=timedelta(minutes=-5)), "token_expired"),
    "no key id": (lambda: jwt.encode(claims(), private_key_pem(), algorithm="RS256"), "token_invalid"),
    "unknown key id": (
        lambda: jwt.encode(claims(), private_key_pem(), algorithm="RS256", headers={"kid": "not-a-platform-key"}),
        "token_invalid",
    ),
    "wrong signature": (_other_key, "token_invalid"),
    "alg none": (_alg_none, "token_invalid"),
    "hs256 with the public key": (_hs256_with_the_public_key, "token_invalid"),
    "wrong audience": (lambda: mint_access_token(USER_ID, aud="another-platform"), "token_invalid"),
    "wrong issuer": (lambda: mint_access_token(USER_ID, iss="somebody-else"), "token_invalid"),
    "tampered payload": (_tampered, "token_invalid"),
    "refresh token": (lambda: mint_access_token(USER_ID, token_type="refresh"), "token_invalid"),
    "no subject": (lambda: signed(claims(sub=None)), "token_invalid"),
    "no expiry": (lambda: signed(claims(exp=None)), "token_invalid"),
    "subject not a user id": (lambda: signed(claims(sub="admin")), "token_invalid"),
    "not a jwt": (lambda: "not-a-token", "token_invalid"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_401(case):
    make, code = BAD_TOKENS[case]

    response = call(f"Bearer {make()}")

    assert response.status_code == 401
    assert response.data["code"] == code
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer a b"])
def test_a_missing_or_malformed_authorization_header_is_401(authorization):
    response = call(authorization)

    assert response.status_code == 401


def test_a_token_verified_once_is_refused_once_it_expires(monkeypatch):
    import common.auth

    token = mint_access_token(USER_ID, lifetime=timedelta(seconds=30))
    assert call(f"Bearer {token}").status_code == 200
    assert call(f"Bearer {token}").status_code == 200  # from the cache of verified tokens
    later = datetime.now(UTC).timestamp() + 31 + settings.JWT_LEEWAY_S
    monkeypatch.setattr(common.auth.time, "time", lambda: later)

    response = call(f"Bearer {token}")

    assert response.status_code == 401
    assert response.data["code"] == "token_expired"


def test_the_cache_of_verified_tokens_stays_bounded(monkeypatch):
    import common.auth

    monkeypatch.setattr(common.auth, "VERIFIED_CACHE_SIZE", 3)
    common.auth._verified.clear()
    tokens = [mint_access_token(uuid.uuid4()) for _ in range(5)]
    for token in tokens:
        assert call(f"Bearer {token}").status_code == 200

    assert len(common.auth._verified) == 3
    assert call(f"Bearer {tokens[0]}").status_code == 200  # evicted: verified again, not refused
