"""The JWTs user_svc issues: simplejwt tokens signed with the private key, carrying the key id of the JWKS.

Claims are what common.auth verifies everywhere: sub (user id), token_type, iat, exp, jti, iss, aud. A refresh
token also names its session (`fam`, the TokenFamily it was rotated within); access tokens do not carry it.
Settings are read when a token is made, not at import, so a test or an operator changing them is heard.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from common import auth
from common import binance as auth_claims
from users import keys

FAMILY_CLAIM = "fam"


class SigningBackend(TokenBackend):
    """simplejwt's backend: signs with the current key of users.keys under its `kid`, and verifies (refresh tokens)
    by `kid` with the keys every service trusts (common.auth), so a rotated-out key's tokens stay valid until they
    expire; the same clock leeway as the verifiers."""

    def __init__(self) -> None:
        super().__init__(
            keys.ALGORITHM, audience=settings.JWT_AUDIENCE, issuer=settings.JWT_ISSUER, leeway=settings.JWT_LEEWAY_S
        )

    @property
    def prepared_signing_key(self) -> Any:
        return keys.private_key()

    def get_verifying_key(self, token: Any) -> Any:
        try:
            return auth.verifying_key(auth.token_key_id(str(token)))
        except AuthenticationFailed as exc:
            raise TokenBackendError(str(exc.detail)) from None

    def encode(self, payload: dict[str, Any]) -> str:
        claims = {**payload, "aud": self.audience, "iss": self.issuer}
        key, kid = keys.signing_key()
        return jwt.encode(claims, key, algorithm=keys.ALGORITHM, headers={"kid": kid})


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
    no_copy_claims = (*RefreshToken.no_copy_claims, FAMILY_CLAIM)

    @classmethod
    def for_family(cls, user: Any, family_id: uuid.UUID) -> UserRefreshToken:
        """A new refresh token of the user in that session, recorded as outstanding (as simplejwt's for_user does)."""
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(user.id)
        token[FAMILY_CLAIM] = str(family_id)
        OutstandingToken.objects.create(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=str(token),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token

    @property
    def family_id(self) -> uuid.UUID | None:
        """The session this token belongs to; None for a token issued before sessions had families."""
        try:
            return uuid.UUID(str(self.payload[FAMILY_CLAIM]))
        except (KeyError, ValueError):
            return None

    @property
    def expires_at(self) -> datetime:
        return datetime_from_epoch(self["exp"])

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


class ApiKeyAccessToken(UserAccessToken):
    """The access token the gateway forwards with a request it checked by API key (common.binance): short-lived,
    made per request, naming the key and what it may do. A revoked key earns no new one, so it stops working at
    once; one already issued lives API_KEY_TOKEN_LIFETIME_S at most, inside the gateway only (no client sees it)."""

    @property
    def lifetime(self) -> timedelta:  # type: ignore[override]
        return timedelta(seconds=settings.API_KEY_TOKEN_LIFETIME_S)


def api_key_access_token(*, user_id: uuid.UUID, api_key_id: uuid.UUID, permissions: tuple[str, ...]) -> str:
    token = ApiKeyAccessToken()
    token[api_settings.USER_ID_CLAIM] = str(user_id)
    token[auth_claims.API_KEY_CLAIM] = str(api_key_id)
    token[auth_claims.API_KEY_PERMISSIONS_CLAIM] = list(permissions)
    return str(token)
