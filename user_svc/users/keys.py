"""The signing key of user_svc and its public half as a JWK set (what /.well-known/jwks.json serves)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "RS256"


@functools.lru_cache(maxsize=4)
def _load_private(pem: str) -> RSAPrivateKey:
    key = load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured("JWT_PRIVATE_KEY must be an RSA private key (tokens are RS256)")
    return key


def private_key() -> RSAPrivateKey:
    pem = settings.JWT_PRIVATE_KEY
    if not pem:
        raise ImproperlyConfigured(
            "user_svc cannot sign tokens: set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE "
            "(locally, `python3 manage_all.py infra up` generates .run/jwt/private.pem)"
        )
    return _load_private(pem)


def public_key() -> RSAPublicKey:
    # Derived from the private key, so what is served always verifies what is signed.
    return private_key().public_key()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@functools.lru_cache(maxsize=4)
def _jwk_of(public_numbers: tuple[int, int]) -> dict[str, Any]:
    e, n = public_numbers
    jwk = {
        "kty": "RSA",
        "e": _b64url(e.to_bytes((e.bit_length() + 7) // 8, "big")),
        "n": _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")),
    }
    # RFC 7638 thumbprint: SHA-256 of the required members in lexical order, no whitespace.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def public_jwk() -> dict[str, Any]:
    numbers = public_key().public_numbers()
    return dict(_jwk_of((numbers.e, numbers.n)))


def key_id() -> str:
    return public_jwk()["kid"]


def jwks() -> dict[str, list[dict[str, Any]]]:
    return {"keys": [public_jwk()]}
