"""Password guessing and account mail, throttled in the shared Redis cache, so a stranger never locks the owner out.

Every check of a password (a login, the current password given to change the password or the email) counts in
three fixed windows of LOGIN_THROTTLE_WINDOW_S, each starting at its first failure:

- the client address: past LOGIN_THROTTLE_IP_FAILURES failures the address gets 429 for any account (one machine
  trying many accounts);
- the account from that address: past LOGIN_THROTTLE_ACCOUNT_FAILURES failures that pair gets 429, and only that
  pair: the owner from another address still logs in;
- the account from everywhere: past LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER failures the account admits one attempt per
  delay, the delay doubling with each further failure up to LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S (many machines
  trying one account). That slows guessing down without locking the account: an address that logged into the
  account within LOGIN_THROTTLE_KNOWN_CLIENT_S is not held at the gate, and anyone else waits seconds, never the
  whole window.

An attempt takes its slots first (an atomic INCR) and is refused when one is past its limit, so concurrent
attempts cannot slip past together; an attempt held at the account's gate gives its slots back (it checked no
password). A right password gives its slots back too, so only failures count, and clears its pair's count.
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


class PasswordThrottled(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "throttled"

    def __init__(self, *, scope: str, retry_after: int):
        super().__init__(
            f"Too many failed password attempts; try again in {retry_after} seconds.",
            details={"scope": scope, "retry_after_s": retry_after},
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Bucket:
    scope: str  # "ip", "account_ip" or "account" (as told to the client); "mail" for account mail
    key: str
    limit: int

    @property
    def until_key(self) -> str:
        return f"{self.key}:until"


def _digest(*parts: str) -> str:
    # Hashed: the cache never holds an address or an email in clear, and keys stay short whatever the input.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _bucket(scope: str, limit: int, *parts: str) -> _Bucket:
    return _Bucket(scope, f"login-failures:{scope}:{_digest(*parts)}", limit)


@dataclass(frozen=True)
class _Attempt:
    ip: _Bucket
    pair: _Bucket
    account: _Bucket
    gate_key: str  # present while the account admits no attempt; its value is when it opens (epoch seconds)
    known_key: str  # present when this address logged into the account recently


def _attempt(*, ip: str, email: str) -> _Attempt:
    return _Attempt(
        ip=_bucket("ip", settings.LOGIN_THROTTLE_IP_FAILURES, ip),
        pair=_bucket("account_ip", settings.LOGIN_THROTTLE_ACCOUNT_FAILURES, email, ip),
        account=_bucket("account", settings.LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER, email),
        gate_key=f"login-gate:{_digest(email)}",
        known_key=f"login-known:{_digest(email, ip)}",
    )


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


def _seconds_until(until: float | None, default: float) -> int:
    remaining = (until - time.time()) if until else default
    return max(1, math.ceil(remaining))


def _account_delay(failures: int) -> int:
    """Seconds the account stays shut after an attempt, once `failures` (this one included) is past the limit."""
    doublings = min(failures - settings.LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER - 1, 30)
    return max(1, min(2**doublings, settings.LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S))


def password_attempt_begin(*, ip: str, email: str) -> None:
    """Take this attempt's slots before a password is checked; raises PasswordThrottled (429) when it must wait."""
    window = settings.LOGIN_THROTTLE_WINDOW_S
    attempt = _attempt(ip=ip, email=email)
    for bucket in (attempt.ip, attempt.pair):
        if _take(bucket, window) > bucket.limit:
            raise PasswordThrottled(scope=bucket.scope, retry_after=_seconds_until(cache.get(bucket.until_key), window))
    failures = _take(attempt.account, window)
    if failures <= attempt.account.limit or cache.get(attempt.known_key):
        return
    delay = _account_delay(failures)
    if cache.add(attempt.gate_key, time.time() + delay, timeout=delay):
        return  # the gate was open: this attempt goes through and shuts it for `delay` seconds
    for bucket in (attempt.ip, attempt.pair, attempt.account):
        _give_back(bucket)
    raise PasswordThrottled(scope="account", retry_after=_seconds_until(cache.get(attempt.gate_key), delay))


def password_attempt_succeeded(*, ip: str, email: str) -> None:
    """The password was right: the slots go back, the pair starts afresh and the address is known to the account.

    The account's count across addresses is not cleared: the owner getting in says nothing about the addresses
    still guessing, which would otherwise get a fresh allowance each time the owner logs in.
    """
    attempt = _attempt(ip=ip, email=email)
    cache.delete_many([attempt.pair.key, attempt.pair.until_key])
    _give_back(attempt.ip)
    _give_back(attempt.account)
    cache.set(attempt.known_key, 1, timeout=settings.LOGIN_THROTTLE_KNOWN_CLIENT_S)


def account_mail_allowed(*, email: str) -> bool:
    """Whether one more account mail (a confirmation, a notice) may go to this address in the mail window.

    Registering is open to anyone, so without this bound anyone could make the platform flood an address with mail.
    """
    bucket = _Bucket("mail", f"account-mail:{_digest(email)}", settings.ACCOUNT_MAIL_LIMIT)
    return _take(bucket, settings.ACCOUNT_MAIL_WINDOW_S) <= bucket.limit
