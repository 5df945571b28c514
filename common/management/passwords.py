"""How management commands take a password: from an environment variable or stdin, never from the command line
(argv is readable by every user of the machine in `ps` and /proc, and lands in shell histories)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser


def _refusal(env: str) -> type[argparse.Action]:
    class Refused(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
            raise CommandError(
                f"--password is not accepted: a password on a command line shows in the process list. "
                f"Set {env} or pass --password-stdin."
            )

    return Refused


def add_password_arguments(parser: CommandParser, *, env: str) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from the first line of stdin (otherwise from the environment variable {env})",
    )
    # Still parsed, to refuse it with a clear message rather than argparse's "unrecognized arguments".
    parser.add_argument("--password", nargs="?", action=_refusal(env), dest="refused_password", help=argparse.SUPPRESS)


def read_password(*, env: str, from_stdin: bool) -> str:
    """The password from stdin's first line (from_stdin) or from the environment variable; CommandError if none."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        source = "stdin"
    else:
        password = os.environ.get(env, "")
        source = f"the environment variable {env}"
    if not password:
        raise CommandError(f"no password in {source} (set {env} or pass --password-stdin)")
    return password
