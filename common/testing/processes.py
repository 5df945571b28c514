"""Real processes in tests (a consumer, a Celery worker) against the test database, killable at will."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def run_database_url() -> str:
    """The URL of the database pytest-django made for this run, for processes the test starts."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Proc:
    """A process in its own session (so a kill reaches its children), its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str], *, cwd: Path):
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
        return self.popen.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
