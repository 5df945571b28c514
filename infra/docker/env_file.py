"""Write the `.env` compose.yaml reads: every secret it requires, random, made once and kept.

    python3 infra/docker/env_file.py            # .env next to compose.yaml (mode 0600)
    python3 infra/docker/env_file.py --file x   # elsewhere

The variables are the ones compose.yaml marks required (`${NAME:?...}`): a Django key, a database password and
a Kafka password per service, the Kafka admin's password and user_svc's API-key encryption key. A variable
already in the file (or given another value by hand) is left as it is, so running this again after a change to
compose.yaml adds only what is new; nothing is ever printed. Standard library only: it runs before any
virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = re.compile(r"\$\{(\w+):\?")
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?(\w+)\s*=")


def required_variables(compose: str) -> list[str]:
    """The names compose.yaml requires, in the order it first mentions them."""
    return list(dict.fromkeys(REQUIRED.findall(compose)))


def new_value(name: str) -> str:
    """A fresh random value of the shape the variable needs (URL-safe: passwords are parts of URLs)."""
    if name == "API_KEY_ENCRYPTION_KEY":  # a Fernet key: 32 random bytes, URL-safe base64
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(50 if name.endswith("SECRET_KEY") else 32)


def defined(text: str) -> set[str]:
    return {match.group(1) for line in text.splitlines() if (match := ASSIGNMENT.match(line))}


def update(target: Path, names: list[str]) -> list[str]:
    """Add the missing variables to the file (made with mode 0600 if new); returns the names added."""
    existing = target.read_text() if target.exists() else ""
    missing = [name for name in names if name not in defined(existing)]
    if not missing:
        return []
    lines = [f"{name}={new_value(name)}" for name in missing]
    text = existing + ("" if not existing or existing.endswith("\n") else "\n") + "\n".join(lines) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(target, 0o600)  # an existing file keeps its mode through O_CREAT: make it private too
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the secrets compose.yaml requires into .env.")
    parser.add_argument("--file", type=Path, default=ROOT / ".env")
    parser.add_argument("--compose", type=Path, default=ROOT / "compose.yaml")
    args = parser.parse_args(argv)
    names = required_variables(args.compose.read_text())
    added = update(args.file, names)
    if added:
        print(f"{args.file}: added {len(added)} secrets ({', '.join(added)}); {len(names) - len(added)} kept")
    else:
        print(f"{args.file}: all {len(names)} secrets compose.yaml requires are there; nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
