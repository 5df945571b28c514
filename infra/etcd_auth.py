"""etcd's users, roles and auth: only a signed-in client reads or writes the registry.

    root               this module alone: makes the users and roles below, turns auth on
    platform-services  read-write on the registry prefixes: web instances register there (common/discovery.py)
    platform-watcher   read-only on them: the gateway watcher renders nginx from them (infra/gateway.py)

The registry prefixes are /platform/services/ and /platform/ns/ (every run namespace's, common/namespace.py);
nothing else in etcd is theirs. `secure()` runs at every `infra up`: on an etcd with auth off it makes what is
missing and turns auth on; on one with auth on it signs in as root and changes only what differs (a missing
permission, a password that is not the secret's), so the usual run writes nothing and no token stops working
(any change to users or roles makes etcd refuse the tokens it gave before).

Passwords are the local secrets .run/secrets/etcd/<user> (common/credentials.py), made on first use; they go to
etcd in the body of an HTTP request to its gateway (/v3/auth/*), never on a command line.

    python infra/etcd_auth.py [--url URL]   # the same, against the etcd at URL (compose's etcd-auth one-shot)

Standard library only: `infra up` runs it before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
if str(ROOT_DIR) not in sys.path:
    sys.path.append(str(ROOT_DIR))

from common import credentials  # noqa: E402 - standard library only, shared with the services

ROOT = "root"
PREFIXES = ("/platform/services/", "/platform/ns/")
# user (and its role, of the same name) -> what it may do on every registry prefix
USERS = {"platform-services": "READWRITE", "platform-watcher": "READ"}


class EtcdAuthSetupError(RuntimeError):
    """etcd refused the setup; the message says what to do."""


class EtcdError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Api:
    """etcd's auth API over its HTTP gateway, with the token of the last sign-in."""

    def __init__(self, url: str, timeout: float = 5) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an etcd URL: {url}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token: str | None = None

    def call(self, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
            f"{self.url}/v3/{path}", data=json.dumps(body or {}).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise EtcdError(exc.code, message) from None

    def sign_in(self, user: str, password: str) -> bool:
        """Sign in as `user`; False when etcd has auth off (every request is then allowed)."""
        try:
            self.token = self.call("auth/authenticate", {"name": user, "password": password})["token"]
        except EtcdError as exc:
            if "authentication is not enabled" in exc.message:
                self.token = None
                return False
            raise
        return True


def _password_works(url: str, user: str, password: str) -> bool:
    try:
        Api(url).sign_in(user, password)
    except EtcdError as exc:
        if "authentication failed" in exc.message:
            return False
        raise
    return True


def desired_permissions(perm_type: str) -> set[tuple[str, str, str]]:
    return {(perm_type, _b64(prefix), _b64(_prefix_end(prefix))) for prefix in PREFIXES}


def _ensure_role(api: Api, role: str, perm_type: str) -> list[str]:
    """The role with exactly its permissions; what it changed."""
    changes = []
    try:
        current = api.call("auth/role/get", {"role": role}).get("perm", [])
    except EtcdError as exc:
        if "role name not found" not in exc.message:
            raise
        api.call("auth/role/add", {"name": role})
        changes.append(f"role {role} added")
        current = []
    have = {(p.get("permType", "READ"), p.get("key", ""), p.get("range_end", "")) for p in current}
    want = desired_permissions(perm_type)
    for kind, key, range_end in sorted(want - have):
        api.call("auth/role/grant", {"name": role, "perm": {"permType": kind, "key": key, "range_end": range_end}})
        changes.append(f"role {role}: {kind} on {base64.b64decode(key).decode()}")
    for _kind, key, range_end in sorted(have - want):
        if (key, range_end) not in {(k, e) for _, k, e in want}:  # a changed type was replaced by the grant
            api.call("auth/role/revoke", {"role": role, "key": key, "range_end": range_end})
            changes.append(f"role {role}: revoked {base64.b64decode(key).decode()}")
    return changes


def _ensure_user(api: Api, user: str, password: str, role: str, *, auth_on: bool) -> list[str]:
    """The user with this password and role; what it changed."""
    changes = []
    try:
        roles = api.call("auth/user/get", {"name": user}).get("roles", [])
    except EtcdError as exc:
        if "user name not found" not in exc.message:
            raise
        try:
            api.call("auth/user/add", {"name": user, "password": password})
            changes.append(f"user {user} added")
        except EtcdError as race:  # another `infra up` made it a moment ago
            if "user name already exists" not in race.message:
                raise
        roles = []
    else:
        # With auth off no password can be checked: set it (no token can be refused yet).
        if not auth_on or not _password_works(api.url, user, password):
            api.call("auth/user/changepw", {"name": user, "password": password})
            changes.append(f"user {user}: password set from its secret")
    if role not in roles:
        api.call("auth/user/grant", {"user": user, "role": role})
        changes.append(f"user {user}: role {role}")
    return changes


def secure(url: str, password: Callable[[str], str] = lambda user: credentials.ensure("etcd", user)) -> list[str]:
    """Make etcd's users and roles what this module says and turn auth on; returns what it changed."""
    api = Api(url)
    root_password = password(ROOT)
    try:
        auth_on = api.sign_in(ROOT, root_password)
    except EtcdError as exc:
        if "authentication failed" in exc.message:
            raise EtcdAuthSetupError(
                f"etcd at {url} has auth on and refuses root's password in {credentials.path('etcd', ROOT)}. "
                "The registry holds nothing worth keeping (every instance registers again): stop etcd, delete "
                "its data folder (.run/etcd/data locally) and run `python3 manage_all.py infra up` again."
            ) from None
        raise
    changes: list[str] = []
    if not auth_on:
        # etcd turns auth on only with a root user holding the root role (whose permissions are built in).
        try:
            api.call("auth/role/add", {"name": ROOT})
        except EtcdError as exc:
            if "role name already exists" not in exc.message:
                raise
        changes += _ensure_user(api, ROOT, root_password, ROOT, auth_on=False)
    for user, perm_type in USERS.items():
        changes += _ensure_role(api, user, perm_type)
        changes += _ensure_user(api, user, password(user), user, auth_on=auth_on)
    if not auth_on:
        api.call("auth/enable")
        changes.append("auth enabled")
    return changes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:52379")
    args = parser.parse_args(argv)
    for change in secure(args.url):
        print(f"[etcd-auth] {change}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
