"""Mint access tokens in tests exactly as user_svc issues them (same key pair, claims, issuer and audience)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

REPO = Path(__file__).resolve().parents[2]


def private_key_pem() -> str:
    path = os.environ.get("JWT_PRIVATE_KEY_FILE") or str(REPO / ".run" / "jwt" / "private.pem")
    return Path(path).read_text()


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
    return jwt.encode(payload, private_key_pem(), algorithm="RS256")


def bearer(user_id: uuid.UUID | str, **claims: Any) -> dict[str, str]:
    """Headers for a request as this user (for DRF's APIClient: client.credentials(**...) or headers=...)."""
    return {"Authorization": f"Bearer {mint_access_token(user_id, **claims)}"}
