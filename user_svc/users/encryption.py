"""Encryption at rest of API key secrets: Fernet (AES-128-CBC + HMAC-SHA256) under keys from the environment.

An HMAC signature can only be checked with the plain secret (Binance does the same), so secrets are encrypted,
not hashed. settings.API_KEY_ENCRYPTION_KEYS is a list of keys: the first encrypts, every one decrypts
(MultiFernet), so a key is rotated by putting the new one first, re-encrypting (`manage.py reencrypt_api_keys`)
and then dropping the old one. A key is 32 random bytes in URL-safe base64, padded or not (what
`Fernet.generate_key()` or `secrets.token_urlsafe(32)` print).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_SEPARATORS = re.compile(r"[\s,]+")


class UndecryptableSecret(Exception):
    """A stored secret none of the configured keys opens: a key was dropped before its secrets were re-encrypted."""


def parse_keys(text: str) -> list[str]:
    """The keys in `text` (separated by commas or whitespace, the encrypting one first), checked and padded.

    ValueError names what is wrong without printing any key.
    """
    keys = []
    for position, raw in enumerate((part for part in _SEPARATORS.split(text) if part), start=1):
        padded = raw + "=" * (-len(raw) % 4)
        try:
            decoded = base64.urlsafe_b64decode(padded.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            decoded = b""
        if len(decoded) != 32 or base64.urlsafe_b64encode(decoded).decode() != padded:
            raise ValueError(f"key {position} is not 32 bytes in URL-safe base64 (e.g. Fernet.generate_key())")
        keys.append(padded)
    if not keys:
        raise ValueError("no key given")
    return keys


@functools.lru_cache(maxsize=4)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    # Keyed by the settings' value, so a test (or an operator's override) that changes the keys is heard.
    return _box(tuple(settings.API_KEY_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise UndecryptableSecret("no configured API_KEY_ENCRYPTION_KEY decrypts this secret") from None


def reencrypt(token: str) -> str:
    """The same secret encrypted under the first key (unchanged in meaning; a new token either way)."""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise UndecryptableSecret("no configured API_KEY_ENCRYPTION_KEY decrypts this secret") from None
