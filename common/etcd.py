"""etcd clients that sign in: etcd3gw (etcd's HTTP gateway) plus the user/password auth it lacks.

The registry has one etcd user per kind of process (infra/etcd_auth.py makes them at `infra up`):

    platform-services   read-write on the registry: web instances register (common/discovery.py)
    platform-watcher    read-only on it: the gateway watcher renders nginx from it (infra/gateway.py)
    root                infra/etcd_auth.py alone: makes the users and roles, turns auth on

A process names its user; the environment can give another and its password, as production does:

    ETCD_USER            the user (default: the one the process names)
    ETCD_PASSWORD        its password, or
    ETCD_PASSWORD_FILE   a file holding it
    (neither, PLATFORM_ENV=local, the default) .run/secrets/etcd/<user>, made by `infra up`

etcd's simple tokens end 300 s (--auth-token-ttl) after their last use, when etcd restarts and when the users or
roles change: a call whose token etcd refuses signs in again and is made once more. The password is looked up when
the client first signs in; an etcd with auth off (compose's; the local one before `infra up` turned auth on) is
called without a token, and then a missing password is no error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

# Imported at the top, never lazily: see common/discovery.py (gunicorn forks while its lease thread runs).
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from common import credentials

SERVICES = "platform-services"
WATCHER = "platform-watcher"
ROOT = "root"
DEFAULT_URL = "http://127.0.0.1:52379"

# What etcd answers when the token is missing, expired, from before a restart or from before an auth change.
_TOKEN_REFUSED = ("invalid auth token", "revision of auth store is old", "user name is empty")
_AUTH_NOT_ENABLED = "authentication is not enabled"


class EtcdAuthError(Etcd3Exception, LookupError):
    """etcd refused this user's password, or the process was given none; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message, message)


def etcd_error(exc: Etcd3Exception) -> str:
    """etcd's own message in an etcd3gw exception ("etcdserver: permission denied", ...)."""
    try:
        return str(json.loads(exc.detail_text or "")["error"])
    except (ValueError, TypeError, KeyError):
        return exc.detail_text or str(exc)


class Client(Etcd3Client):
    """An etcd3gw client that signs in as `user` and signs in again whenever etcd refuses its token."""

    def __init__(
        self, *, host: str, port: int, user: str, password: str | Callable[[], str], timeout: float = 5
    ) -> None:
        super().__init__(host=host, port=port, timeout=timeout)
        self.user = user
        self.password = password if callable(password) else lambda: password
        self._signed_in = False  # a token is on the session, or etcd has auth off

    def authenticate(self) -> None:
        """Get a fresh token (POST /v3/auth/authenticate) and send it with every later request."""
        self.session.headers.pop("Authorization", None)
        missing: LookupError | None = None
        try:
            password = self.password()
        except LookupError as exc:  # no password given: etcd's answer says whether one is needed
            password, missing = "", exc
        try:
            result = super().post(self.get_url("/auth/authenticate"), json={"name": self.user, "password": password})
        except Etcd3Exception as exc:
            message = etcd_error(exc)
            if _AUTH_NOT_ENABLED not in message:
                if missing is not None:
                    raise missing from None
                if "authentication failed" in message:
                    raise EtcdAuthError(f"etcd refused the password of user {self.user}: {message}") from None
                raise
        else:
            self.session.headers["Authorization"] = result["token"]
        self._signed_in = True

    def post(self, url, *args, **kwargs):
        if not self._signed_in:
            self.authenticate()
        try:
            return super().post(url, *args, **kwargs)
        except Etcd3Exception as exc:
            if not any(text in etcd_error(exc) for text in _TOKEN_REFUSED):
                raise
        self.authenticate()
        return super().post(url, *args, **kwargs)

    def watch(self, key, **kwargs):
        # etcd checks the token only when a watch is created (an open watch outlives it) and answers a refused
        # one with a watch created and canceled at once, which etcd3gw's event iterator never reports: it would
        # wait for events forever. So every watch starts with a token etcd has just given.
        self.authenticate()
        return super().watch(key, **kwargs)


def password(user: str) -> str:
    """The password of `user`: ETCD_PASSWORD, ETCD_PASSWORD_FILE's content, or (local mode) the local secret."""
    if value := os.environ.get("ETCD_PASSWORD", ""):
        return value
    if path := os.environ.get("ETCD_PASSWORD_FILE", ""):
        try:
            return Path(path).read_text().strip()
        except FileNotFoundError:
            raise EtcdAuthError(f"ETCD_PASSWORD_FILE points at {path}, which does not exist") from None
    platform_env = os.environ.get("PLATFORM_ENV", "local")
    if platform_env != "local":
        raise EtcdAuthError(f"ETCD_PASSWORD or ETCD_PASSWORD_FILE is required when PLATFORM_ENV={platform_env!r}")
    return credentials.read("etcd", user)


def client(user: str, *, url: str | None = None, timeout: float = 5) -> Client:
    """A client for this process, signed in as `user` unless the environment names another (ETCD_USER), at
    `url` (default ETCD_URL, else the local etcd)."""
    parts = urlsplit(url or os.environ.get("ETCD_URL") or DEFAULT_URL)
    user = os.environ.get("ETCD_USER") or user
    host, port = parts.hostname or "127.0.0.1", parts.port or 2379
    return Client(host=host, port=port, user=user, password=lambda: password(user), timeout=timeout)


def local_client(user: str, *, port: int, timeout: float = 5) -> Client:
    """A client of the local etcd as exactly `user`, with its local secret: for infra/ and the tests."""
    return Client(
        host="127.0.0.1", port=port, user=user, password=lambda: credentials.read("etcd", user), timeout=timeout
    )
