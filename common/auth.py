"""Stateless JWT verification for every service: RS256 tokens issued by user_svc, checked with its public key.

No service but user_svc touches the user database: a verified token is the whole identity of a request
(`request.user.id` is the token's subject). Signature, expiry, issuer, audience and token type are all
checked; only RS256 is accepted, so `alg: none` or an HMAC token signed with the public key fail.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from typing import Any

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

ALGORITHM = "RS256"
USER_ID_CLAIM = "sub"


class TokenUser:
    """The caller as its access token describes it; never loaded from a database."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: dict[str, Any]):
        self.claims = claims
        self.id = uuid.UUID(str(claims[USER_ID_CLAIM]))
        self.pk = self.id
        self.is_staff = bool(claims.get("is_staff", False))

    def __str__(self) -> str:
        return str(self.id)


@functools.lru_cache(maxsize=4)
def _public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem.encode())


# Tokens verified lately, with their claims: a client sends the same token with every request until it expires,
# and an RS256 check costs more than the rest of authentication. Bounded; an entry is used only before its `exp`.
VERIFIED_CACHE_SIZE = 4096
_verified: dict[tuple[str, str], dict[str, Any]] = {}


def verify_access_token(token: str) -> dict[str, Any]:
    """The token's claims if it is a valid access token; raises AuthenticationFailed otherwise."""
    pem = settings.JWT_PUBLIC_KEY
    if not pem:
        raise exceptions.AuthenticationFailed(
            "token verification is not configured (set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE)"
        )
    key = (pem, token)
    claims = _verified.get(key)
    if claims is not None:
        if claims["exp"] > time.time():
            return claims
        _verified.pop(key, None)
        raise exceptions.AuthenticationFailed("token expired", code="token_expired")
    claims = _verify(token, pem)
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread evicted it first
            del _verified[next(iter(_verified))]  # the oldest entry
    _verified[key] = claims
    return claims


def _verify(token: str, pem: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            key=_public_key(pem),
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", USER_ID_CLAIM]},
        )
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("token expired", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise exceptions.AuthenticationFailed(f"invalid token: {exc}", code="token_invalid") from None
    if claims.get("token_type") != "access":
        raise exceptions.AuthenticationFailed("not an access token", code="token_invalid")
    try:
        uuid.UUID(str(claims[USER_ID_CLAIM]))
    except ValueError:
        raise exceptions.AuthenticationFailed("invalid token subject", code="token_invalid") from None
    return claims


class JWTAuthentication(BaseAuthentication):
    """DRF authentication from `Authorization: Bearer <access token>`."""

    def authenticate(self, request: Request) -> tuple[TokenUser, dict[str, Any]] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        claims = verify_access_token(header[1].decode(errors="replace"))
        return TokenUser(claims), claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # makes DRF answer 401 (not 403) to an anonymous caller


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the bearer scheme in every service's OpenAPI schema (the docs' Authorize button)."""

    target_class = "common.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
