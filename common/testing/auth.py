"""Mint access tokens in tests exactly as user_svc issues them (same key pair, claims, issuer and audience)."""

from __future__ import annotations

import functools
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from common import credentials, jwt_keys


def private_key_pem() -> str:
    """user_svc's signing key now (`infra up` made it; a rotation replaces it)."""
    path = os.environ.get("JWT_PRIVATE_KEY_FILE") or str(credentials.run_dir() / "jwt" / jwt_keys.PRIVATE)
    return Path(path).read_text()


@functools.lru_cache(maxsize=8)
def key_id(private_pem: str) -> str:
    """The kid user_svc puts in the header of tokens signed with this key (its public key's RFC 7638 thumbprint)."""
    return jwt_keys.jwk_of(load_pem_private_key(private_pem.encode(), password=None).public_key())["kid"]


def sign(payload: dict[str, Any], private_pem: str | None = None) -> str:
    """A token signed as user_svc signs it: RS256 with the key's kid in the header."""
    pem = private_pem or private_key_pem()
    return jwt.encode(payload, pem, algorithm="RS256", headers={"kid": key_id(pem)})


def mint_access_token(user_id: uuid.UUID | str, *, lifetime: timedelta = timedelta(minutes=5), **claims: Any) -> str:
    from django.conf import settings

    # Outside a Django project (the cross-service tests) the same defaults the services use apply.
    issuer = settings.JWT_ISSUER if settings.configured else os.environ.get("JWT_ISSUER", "paper-trading/user_svc")
    audience = settings.JWT_AUDIENCE if settings.configured else os.environ.get("JWT_AUDIENCE", "paper-trading")
    now = datetime.now(UTC)
    payload = {
        "token_type": "access",
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "iss": issuer,
        "aud": audience,
        **claims,
    }
    return sign(payload)


def bearer(user_id: uuid.UUID | str, **claims: Any) -> dict[str, str]:
    """Headers for a request as this user (for DRF's APIClient: client.credentials(**...) or headers=...)."""
    return {"Authorization": f"Bearer {mint_access_token(user_id, **claims)}"}
