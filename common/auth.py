"""Stateless JWT verification for every service: RS256 tokens issued by user_svc, checked with its public keys.

No service but user_svc touches the user database: a verified token is the whole identity of a request
(`request.user.id` is the token's subject). The token's `kid` picks the public key (a token without one, or with
one no longer trusted, fails); signature, expiry (with settings.JWT_LEEWAY_S of clock leeway on exp, iat and nbf),
issuer, audience and token type are all checked; only RS256 is accepted, so `alg: none` or an HMAC token signed
with the public key fail.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from jwt.algorithms import RSAAlgorithm
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from common import jwt_keys

logger = logging.getLogger(__name__)

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


class TrustedKeys:
    """The public keys a token may be signed with, by `kid`: from settings.JWT_JWKS_FILE when it exists (keys past
    their `expires_at` excluded), else the one settings.JWT_PUBLIC_KEY (its kid the RFC 7638 thumbprint).

    The file is re-read only when it changed (inode, size or mtime): checked at once when a token names a kid not
    known here (a rotation publishes the new key before user_svc signs with it), and at most every RECHECK_S
    otherwise (so a key removed from the file stops being trusted). A flood of made-up kids costs a stat each,
    never a read or a parse.
    """

    RECHECK_S = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._source: tuple[str, str] | None = None  # (JWKS file, PEM) the keys were loaded from
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._keys: dict[str, tuple[Any, float | None]] = {}  # kid -> (public key, expires_at or None)

    def get(self, kid: str) -> Any | None:
        """The public key of that kid if it is trusted now, else None."""
        source = (settings.JWT_JWKS_FILE, settings.JWT_PUBLIC_KEY)
        if source != self._source:
            self._load(source, force=True)
        elif source[0] and (kid not in self._keys or time.monotonic() - self._checked > self.RECHECK_S):
            self._load(source, force=False)
        entry = self._keys.get(kid)
        if entry is None or (entry[1] is not None and time.time() >= entry[1]):
            return None
        return entry[0]

    def _load(self, source: tuple[str, str], *, force: bool) -> None:
        with self._lock:
            jwks_file, pem = source
            self._checked = time.monotonic()
            stamp = None
            if jwks_file:
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(jwks_file)
                    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if not force and stamp == self._stamp:
                return
            keys: dict[str, tuple[Any, float | None]] = {}
            if stamp is not None:
                try:
                    for jwk in jwt_keys.read_jwks(Path(jwks_file)):
                        expires_at = jwk.get(jwt_keys.EXPIRES_AT)
                        keys[jwk["kid"]] = (
                            RSAAlgorithm.from_jwk(jwk),
                            None if expires_at is None else float(expires_at),
                        )
                except (OSError, ValueError, KeyError, TypeError, jwt.InvalidKeyError) as exc:
                    if self._source == source:  # keep what was trusted; a hand-edited file must not lock everyone out
                        logger.warning(
                            "JWK set %s unreadable, keeping the %d keys read before: %s",
                            jwks_file,
                            len(self._keys),
                            exc,
                        )
                        self._stamp = stamp
                        return
                    logger.warning("JWK set %s unreadable: %s", jwks_file, exc)
            elif pem:
                key = load_pem_public_key(pem.encode())
                keys[jwt_keys.jwk_of(key)["kid"]] = (key, None)
            self._keys, self._stamp, self._source = keys, stamp, source


trusted_keys = TrustedKeys()


def token_key_id(token: str) -> str:
    """The `kid` of a token's header (not yet verified); AuthenticationFailed when it has none."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise exceptions.AuthenticationFailed(f"invalid token: {exc}", code="token_invalid") from None
    if not isinstance(kid, str) or not kid:
        raise exceptions.AuthenticationFailed("invalid token: no key id (kid) in its header", code="token_invalid")
    return kid


def verifying_key(kid: str) -> Any:
    """The trusted public key of that kid; AuthenticationFailed when there is none (unknown or retired)."""
    if not (settings.JWT_JWKS_FILE or settings.JWT_PUBLIC_KEY):
        raise exceptions.AuthenticationFailed(
            "token verification is not configured (set JWT_JWKS_FILE, JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE)"
        )
    key = trusted_keys.get(kid)
    if key is None:
        raise exceptions.AuthenticationFailed("invalid token: unknown or retired signing key", code="token_invalid")
    return key


# Tokens verified lately, with their claims and key id: a client sends the same token with every request until it
# expires, and an RS256 check costs more than the rest of authentication. Bounded; an entry is used only before its
# `exp` (plus the leeway) and while its key is trusted.
VERIFIED_CACHE_SIZE = 4096
_verified: dict[str, tuple[dict[str, Any], str]] = {}


def verify_access_token(token: str) -> dict[str, Any]:
    """The token's claims if it is a valid access token; raises AuthenticationFailed otherwise."""
    cached = _verified.get(token)
    if cached is not None:
        claims, kid = cached
        if claims["exp"] + settings.JWT_LEEWAY_S <= time.time():
            _verified.pop(token, None)
            raise exceptions.AuthenticationFailed("token expired", code="token_expired")
        if trusted_keys.get(kid) is not None:
            return claims
        _verified.pop(token, None)  # its key retired: verified again, and refused
    kid = token_key_id(token)
    claims = _verify(token, verifying_key(kid))
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread evicted it first
            del _verified[next(iter(_verified))]  # the oldest entry
    _verified[token] = (claims, kid)
    return claims


def _verify(token: str, key: Any) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=settings.JWT_LEEWAY_S,
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
