"""The JWTs user_svc issues: simplejwt tokens signed with the private key, carrying the key id of the JWKS.

Claims are what common.auth verifies everywhere: sub (user id), token_type, iat, exp, jti, iss, aud.
Settings are read when a token is made, not at import, so a test or an operator changing them is heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from users import keys


class SigningBackend(TokenBackend):
    """simplejwt's backend with the key pair from users.keys and a `kid` header."""

    def __init__(self) -> None:
        super().__init__(keys.ALGORITHM, audience=settings.JWT_AUDIENCE, issuer=settings.JWT_ISSUER)

    @property
    def prepared_signing_key(self) -> Any:
        return keys.private_key()

    @property
    def prepared_verifying_key(self) -> Any:
        return keys.public_key()

    def encode(self, payload: dict[str, Any]) -> str:
        claims = {**payload, "aud": self.audience, "iss": self.issuer}
        return jwt.encode(claims, keys.private_key(), algorithm=keys.ALGORITHM, headers={"kid": keys.key_id()})


def _lifetime(name: str) -> timedelta:
    return settings.SIMPLE_JWT[name]


class UserAccessToken(AccessToken):
    @property
    def lifetime(self) -> timedelta:  # type: ignore[override]
        return _lifetime("ACCESS_TOKEN_LIFETIME")

    def get_token_backend(self) -> TokenBackend:
        return SigningBackend()


class UserRefreshToken(RefreshToken):
    access_token_class = UserAccessToken

    @property
    def lifetime(self) -> timedelta:  # type: ignore[override]
        return _lifetime("REFRESH_TOKEN_LIFETIME")

    def get_token_backend(self) -> TokenBackend:
        return SigningBackend()

    def verify(self, *args: Any, **kwargs: Any) -> None:
        # Signature, expiry, type and id only: whether the token was revoked is decided by the services
        # in the same transaction that uses it (a unique row per revoked token), never check-then-act.
        Token.verify(self, *args, **kwargs)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int  # seconds the access token lives


def token_pair_for(refresh: UserRefreshToken) -> TokenPair:
    return TokenPair(
        access=str(refresh.access_token),
        refresh=str(refresh),
        expires_in=int(_lifetime("ACCESS_TOKEN_LIFETIME").total_seconds()),
    )
