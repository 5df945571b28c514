"""Fixtures of common/'s tests: real processes (consumer, Celery worker) of the test project."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import common.tests.handlers  # noqa: F401 - registers the test contracts
from common.testing.processes import Proc, run_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spawn(tmp_path) -> Iterator:
    """Start a real process of the test project, against the test database; all are killed at the end."""
    started: list[Proc] = []

    def start(kind: str, *args: str, **env: str) -> Proc:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "common.tests.settings",
            "DATABASE_URL": run_database_url(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if kind == "consume":
            cmd = [sys.executable, "-m", "django", "consume", *args]
        elif kind == "worker":
            cmd = [
                # Its queues (the run namespace's) come from the settings, as in every service's worker.
                sys.executable, "-m", "celery", "-A", "common.tests.celery_app", "worker",
                "--concurrency", "1", "--pool", "solo", "--without-mingle", "--without-gossip", *args,
            ]  # fmt: skip
        else:
            raise ValueError(kind)
        proc = Proc(cmd, tmp_path / f"{kind}-{len(started)}.log", full_env, cwd=ROOT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
