"""The signing key of user_svc and the JWK set of every key still trusted (what /.well-known/jwks.json serves).

The signing key is read from settings.JWT_PRIVATE_KEY_FILE again whenever that file changes, so every process
signs with the new key as soon as `manage.py rotate_jwt_key` (common.jwt_keys.rotate) has replaced it; without a
file, settings.JWT_PRIVATE_KEY is the one key.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common import jwt_keys

ALGORITHM = jwt_keys.ALGORITHM

_lock = threading.Lock()
_from_file: dict[str, tuple[tuple[int, int, int], RSAPrivateKey]] = {}  # path -> (its stat stamp, the key)


@functools.lru_cache(maxsize=4)
def _load_private(pem: str | bytes) -> RSAPrivateKey:
    key = load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured("JWT_PRIVATE_KEY must be an RSA private key (tokens are RS256)")
    return key


def private_key() -> RSAPrivateKey:
    """The key user_svc signs with now."""
    if path := settings.JWT_PRIVATE_KEY_FILE:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = _from_file.get(path)
            if cached is None or cached[0] != stamp:
                with _lock:
                    _from_file[path] = cached = (stamp, _load_private(Path(path).read_bytes()))
            return cached[1]
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


@functools.lru_cache(maxsize=8)
def _jwk_of(public_numbers: tuple[int, int]) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    e, n = public_numbers
    return jwt_keys.jwk_of(RSAPublicNumbers(e, n).public_key())


def public_jwk() -> dict[str, Any]:
    numbers = public_key().public_numbers()
    return dict(_jwk_of((numbers.e, numbers.n)))


def signing_key() -> tuple[RSAPrivateKey, str]:
    """The key to sign with and its kid, read together (a rotation in between cannot pair one with the other)."""
    key = private_key()
    numbers = key.public_key().public_numbers()
    return key, _jwk_of((numbers.e, numbers.n))["kid"]


def key_id() -> str:
    return public_jwk()["kid"]


def jwks() -> dict[str, list[dict[str, Any]]]:
    """The signing key first, then every other key of the JWK set file that is still live."""
    current = public_jwk()
    keys = [current]
    if settings.JWT_JWKS_FILE:
        try:
            stored = jwt_keys.read_jwks(Path(settings.JWT_JWKS_FILE))
        except FileNotFoundError:
            stored = []
        keys += [jwt_keys.public_jwk(k) for k in stored if k["kid"] != current["kid"] and jwt_keys.is_live(k)]
    return {"keys": keys}
