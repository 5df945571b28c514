"""Local secrets under .run/secrets/: one random value per (kind, name), made once, readable by this user only.

    .run/secrets/postgres/<role>     the PostgreSQL password of a role (the cluster's superuser too)
    .run/secrets/kafka/<principal>   the SASL/SCRAM password of a Kafka principal
    .run/secrets/etcd/<user>         the password of an etcd user
    .run/secrets/django/<service>    a service's SECRET_KEY
    .run/secrets/api-keys/encryption user_svc's key for API key secrets (API_KEY_ENCRYPTION_KEY)

`infra up` makes them (`ensure`; the last two are made by the service's settings on first start); processes read
them (`read`) only in local mode and only when the environment does not give the value (production passes every
secret through its environment or a *_FILE variable). A file is created with mode 0600 from the start (never
chmod-ed after it was written) inside a folder of mode 0700, and a value never appears on a command line: tools
get it through their environment or a file.

Standard library only: infra/ and manage_all.py use it before the virtualenv exists.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class MissingSecret(LookupError):
    """A local secret that `infra up` has not made yet; the message says what to run."""


def run_dir() -> Path:
    return Path(os.environ.get("PLATFORM_RUN_DIR", _ROOT / ".run"))


def path(kind: str, name: str) -> Path:
    if not (_NAME.fullmatch(kind) and _NAME.fullmatch(name)):
        raise ValueError(f"not a secret name: {kind}/{name}")
    return run_dir() / "secrets" / kind / name


def read(kind: str, name: str) -> str:
    """The secret's value; MissingSecret if it was never made."""
    try:
        return path(kind, name).read_text().strip()
    except FileNotFoundError:
        raise MissingSecret(
            f"no local secret {kind}/{name} in {run_dir() / 'secrets'}: run `python3 manage_all.py infra up` first"
        ) from None


def ensure(kind: str, name: str, *, nbytes: int = 24) -> str:
    """The secret's value, made now (random, URL-safe) if it does not exist yet."""
    target = path(kind, name)
    if target.exists():
        return target.read_text().strip()
    for folder in (target.parent.parent, target.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    value = secrets.token_urlsafe(nbytes)
    # Written whole under a private name, then linked into place: a process that starts at the same moment
    # (every process of a service reads its SECRET_KEY at start) sees no file or the whole value, never half.
    temp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        os.link(temp, target)
    except FileExistsError:  # another process made it first: use theirs
        return target.read_text().strip()
    finally:
        temp.unlink(missing_ok=True)
    return value


def write_private(target: Path, content: str | bytes) -> None:
    """Write a file that holds a secret (a config with a password in it, a private key) with mode 0600 from the
    start; an existing file is replaced atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
    os.replace(temp, target)
