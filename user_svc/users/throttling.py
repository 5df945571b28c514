"""Login throttling in the shared Redis cache: failed attempts per account and per client address.

An attempt takes a slot first (an atomic INCR) and is refused when the slot is past the limit, so
concurrent attempts cannot slip past it together. A successful login gives its slot back: only
failures count. Windows are fixed and start at the first failure; Retry-After says when one ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework import status

from common.exceptions import ApplicationError


class LoginThrottled(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "throttled"

    def __init__(self, *, scope: str, retry_after: int):
        super().__init__(
            f"Too many failed login attempts; try again in {retry_after} seconds.",
            details={"scope": scope, "retry_after_s": retry_after},
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Bucket:
    scope: str  # "ip" or "account"
    key: str
    limit: int

    @property
    def until_key(self) -> str:
        return f"{self.key}:until"


def _bucket(scope: str, ident: str, limit: int) -> _Bucket:
    # Hashed: the cache never holds an address in clear, and keys stay short whatever the input.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:40]
    return _Bucket(scope, f"login-failures:{scope}:{digest}", limit)


def _buckets(*, ip: str, email: str) -> list[_Bucket]:
    return [
        _bucket("ip", ip, settings.LOGIN_THROTTLE_IP_FAILURES),
        _bucket("account", email, settings.LOGIN_THROTTLE_ACCOUNT_FAILURES),
    ]


def _take(bucket: _Bucket, window: int) -> int:
    """Count one more attempt in the bucket; returns the count including it."""
    for _ in range(2):
        if cache.add(bucket.key, 1, timeout=window):
            cache.set(bucket.until_key, time.time() + window, timeout=window)
            return 1
        try:
            return cache.incr(bucket.key)
        except ValueError:
            continue  # the window ended between add and incr: start a new one
    return cache.incr(bucket.key)


def _give_back(bucket: _Bucket) -> None:
    with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing left to give back
        cache.decr(bucket.key)


def _retry_after(bucket: _Bucket, window: int) -> int:
    until = cache.get(bucket.until_key)
    remaining = (until - time.time()) if until else window
    return max(1, math.ceil(remaining))


def login_attempt_begin(*, ip: str, email: str) -> None:
    """Take a slot in every bucket of this attempt; raises LoginThrottled when one is full."""
    window = settings.LOGIN_THROTTLE_WINDOW_S
    for bucket in _buckets(ip=ip, email=email):
        if _take(bucket, window) > bucket.limit:
            raise LoginThrottled(scope=bucket.scope, retry_after=_retry_after(bucket, window))


def login_attempt_succeeded(*, ip: str, email: str) -> None:
    """The attempt was good: the account starts afresh and the address gets its slot back."""
    ip_bucket, account_bucket = _buckets(ip=ip, email=email)
    cache.delete_many([account_bucket.key, account_bucket.until_key])
    _give_back(ip_bucket)
