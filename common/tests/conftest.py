"""Fixtures of common/'s tests: real processes (consumer, Celery worker) of the test project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

import common.tests.handlers  # noqa: F401 - registers the test contracts

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Proc:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]):
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
        return self.popen.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn(tmp_path) -> Iterator:
    """Start a real process of the test project, against the test database; all are killed at the end."""
    started: list[Proc] = []

    def start(kind: str, *args: str, **env: str) -> Proc:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "common.tests.settings",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if kind == "consume":
            cmd = [sys.executable, "-m", "django", "consume", *args]
        elif kind == "worker":
            cmd = [
                sys.executable, "-m", "celery", "-A", "common.tests.celery_app", "worker",
                "-Q", "platform_common", "--concurrency", "1", "--pool", "solo", "--without-mingle",
                "--without-gossip", *args,
            ]  # fmt: skip
        else:
            raise ValueError(kind)
        proc = Proc(cmd, tmp_path / f"{kind}-{len(started)}.log", full_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
