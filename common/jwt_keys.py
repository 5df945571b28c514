"""user_svc's RS256 keys on disk: the signing key, its public half, and the JWK set of every key still trusted.

    <dir>/private.pem   the key user_svc signs with now (mode 0600 from the start; user_svc alone reads it)
    <dir>/public.pem    its public half
    <dir>/jwks.json     every public key a live token may be signed with, by RFC 7638 thumbprint (`kid`); a key
                        rotated out carries `expires_at` (epoch seconds): the moment the last token it signed
                        has expired, after which no verifier trusts it and the next rotation or `ensure` drops it

A rotation publishes the new public key in jwks.json before user_svc signs with it, so a verifier that meets the
new `kid` finds it when it re-reads the file. Verifiers (common.auth) read jwks.json only; nobody fetches it
from user_svc over HTTP.

    python -m common.jwt_keys --dir .run/jwt      # make the pair (and jwks.json) when missing; drop expired keys
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common import credentials

ALGORITHM = "RS256"
PRIVATE, PUBLIC, JWKS = "private.pem", "public.pem", "jwks.json"
EXPIRES_AT = "expires_at"
_JWK_MEMBERS = ("kty", "e", "n", "kid", "use", "alg")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk_of(public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The public key as a JWK, its `kid` the RFC 7638 thumbprint (SHA-256 of e, kty, n in that order)."""
    numbers = public_key.public_numbers()
    e, n = numbers.e, numbers.n
    jwk = {
        "kty": "RSA",
        "e": _b64url(e.to_bytes((e.bit_length() + 7) // 8, "big")),
        "n": _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")),
    }
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The standard members only (what /.well-known/jwks.json serves)."""
    return {k: jwk[k] for k in _JWK_MEMBERS if k in jwk}


def is_live(jwk: dict[str, Any], now: float | None = None) -> bool:
    expires_at = jwk.get(EXPIRES_AT)
    return expires_at is None or (time.time() if now is None else now) < float(expires_at)


def read_jwks(path: Path) -> list[dict[str, Any]]:
    """The keys of a JWK set file (every key, expired ones too); ValueError if it is not one."""
    document = json.loads(path.read_text())
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("kid") for k in keys):
        raise ValueError(f"{path} is not a JWK set with a kid on every key")
    return keys


def _write_public(target: Path, content: str) -> None:
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.write_text(content)
    os.chmod(temp, 0o644)
    os.replace(temp, target)  # atomic: a verifier reads the old set or the new one, never half of either


def _write_jwks(directory: Path, keys: list[dict[str, Any]]) -> None:
    _write_public(directory / JWKS, json.dumps({"keys": keys}, indent=2) + "\n")


def _pem(key: rsa.RSAPrivateKey) -> tuple[bytes, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def _signing_key(directory: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((directory / PRIVATE).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{directory / PRIVATE} is not an RSA private key")
    return key


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer of the folder at a time (two rotations at once would lose a key)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _install(directory: Path, key: rsa.RSAPrivateKey, keys: list[dict[str, Any]]) -> None:
    # Order matters: the JWK set names the new key before anything signs with it.
    private, public = _pem(key)
    _write_jwks(directory, keys)
    credentials.write_private(directory / PRIVATE, private)
    _write_public(directory / PUBLIC, public)


def _reconciled(directory: Path, now: float) -> tuple[rsa.RSAPrivateKey, list[dict[str, Any]]]:
    """The signing key and the JWK set as they should be: the signing key's JWK first and never expiring,
    keys past their `expires_at` dropped."""
    key = _signing_key(directory)
    current = jwk_of(key.public_key())
    try:
        keys = read_jwks(directory / JWKS)
    except FileNotFoundError:
        keys = []
    others = [k for k in keys if k["kid"] != current["kid"] and is_live(k, now)]
    return key, [current, *others]


def ensure_key_pair(directory: Path, *, now: float | None = None) -> tuple[Path, Path]:
    """Make the pair when missing (the private key 0600 from the start) and keep jwks.json in step with it."""
    now = time.time() if now is None else now
    with _locked(directory):
        if not (directory / PRIVATE).exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _install(directory, key, [jwk_of(key.public_key())])
        else:
            key, keys = _reconciled(directory, now)
            try:
                unchanged = read_jwks(directory / JWKS) == keys and (directory / PUBLIC).exists()
            except FileNotFoundError:
                unchanged = False
            if not unchanged:
                _write_jwks(directory, keys)
                _write_public(directory / PUBLIC, _pem(key)[1])
    return directory / PRIVATE, directory / PUBLIC


def rotate(directory: Path, *, retire_after_s: float, now: float | None = None) -> tuple[str, list[str]]:
    """A new signing key; the previous ones stay trusted for `retire_after_s` more seconds (at least the longest
    token lifetime plus the clock leeway), 0 drops them at once. Returns the new kid and the kids still trusted."""
    now = time.time() if now is None else now
    ensure_key_pair(directory, now=now)
    with _locked(directory):
        _, keys = _reconciled(directory, now)
        until = math.ceil(now + retire_after_s)
        # An already retired key keeps its earlier end; 0 refuses every token the old keys signed from now on.
        retired = (
            [{**jwk, EXPIRES_AT: min(jwk.get(EXPIRES_AT, until), until)} for jwk in keys] if retire_after_s > 0 else []
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        new = jwk_of(key.public_key())
        _install(directory, key, [new, *retired])
    return new["kid"], [k["kid"] for k in retired]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    private, public = ensure_key_pair(args.dir)
    print(f"JWT keys: {private} (user_svc only), {public} and {args.dir / JWKS} (every service)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
