"""Local secrets: a SECRET_KEY per service under the run folder, the logins `up` makes kept in a private file and
printed once, and no password on any command line."""

from __future__ import annotations

import importlib
import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from common import credentials
from common.settings import SERVICES, service_settings

ROOT = Path(__file__).resolve().parents[2]
OLD_PUBLIC_KEY = "django-insecure-local-only-never-used-outside-local-mode"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PLATFORM_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_ENV", "local")
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@127.0.0.1:1/unused")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "unused")  # the broker credential is not what these tests read
    return tmp_path


def secret_key(service: str) -> str:
    return service_settings(name=service, base_dir=ROOT / service, apps=[])["SECRET_KEY"]


def test_each_service_gets_its_own_secret_key_made_once_and_readable_by_this_user_only(run_dir):
    keys = {svc: secret_key(svc) for svc in SERVICES}

    assert len(set(keys.values())) == len(SERVICES)
    assert OLD_PUBLIC_KEY not in keys.values()
    assert all(len(key) >= 50 for key in keys.values())  # Django's deploy check asks for 50 characters
    assert {svc: secret_key(svc) for svc in SERVICES} == keys  # the same at the next start
    for svc, key in keys.items():
        path = run_dir / "secrets" / "django" / svc
        assert path.read_text().strip() == key
        assert mode(path) == 0o600
    assert mode(run_dir / "secrets" / "django") == 0o700
    assert not [p for p in (run_dir / "secrets" / "django").iterdir() if p.name.startswith(".")]  # no leftovers


def test_the_environment_s_secret_key_wins_and_production_requires_one(run_dir, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "k" * 60)
    assert secret_key("order_svc") == "k" * 60
    assert not (run_dir / "secrets" / "django" / "order_svc").exists()

    monkeypatch.delenv("DJANGO_SECRET_KEY")
    monkeypatch.setenv("PLATFORM_ENV", "production")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is required"):
        secret_key("order_svc")
    assert not (run_dir / "secrets" / "django" / "order_svc").exists()  # never a local key in production


def test_this_project_runs_with_its_own_key_from_the_run_folder():
    assert credentials.read("django", "platform_common") == settings.SECRET_KEY
    assert settings.SECRET_KEY != OLD_PUBLIC_KEY
    assert OLD_PUBLIC_KEY not in (ROOT / "common" / "settings.py").read_text()


def test_processes_starting_at_once_agree_on_one_key(run_dir):
    code = "from common import credentials; print(credentials.ensure('django', 'race', nbytes=48))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(6)
    ]
    values = {p.communicate(timeout=60)[0].strip() for p in procs}

    assert len(values) == 1 and len(values.pop()) >= 50


# --- the logins of `up` -----------------------------------------------------------------------------------------


@pytest.fixture
def manage_all(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        module = importlib.import_module("manage_all")
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setattr(module.infra, "RUN", tmp_path)
    return module


def test_the_logins_are_made_once_in_a_file_private_from_the_start(manage_all, tmp_path):
    old_umask = os.umask(0)
    try:
        creds, created = manage_all.demo_credentials()
    finally:
        os.umask(old_umask)
    again, created_again = manage_all.demo_credentials()

    path = tmp_path / "demo-credentials.json"
    assert (created, created_again) == (True, False)  # `up` prints them only the first time
    assert again == creds
    assert mode(path) == 0o600
    assert creds["operator_password"] and creds["demo_password"]


def test_the_logins_reach_the_commands_through_the_environment_never_argv(manage_all, monkeypatch):
    calls = []
    monkeypatch.setattr(
        manage_all.subprocess,
        "run",
        lambda cmd, **kw: calls.append((cmd, kw["env"])) or subprocess.CompletedProcess(cmd, 0, "", ""),
    )
    creds, _ = manage_all.demo_credentials()

    manage_all.ensure_logins(creds)

    assert {tuple(cmd[2:4]) for cmd, _ in calls} == {("ensure_operator", "--email"), ("ensure_demo_user", "--email")}
    for cmd, env in calls:
        assert creds["operator_password"] not in " ".join(cmd) and creds["demo_password"] not in " ".join(cmd)
        assert "--password" not in cmd
        assert env.get("OPERATOR_PASSWORD") == creds["operator_password"] or (
            env.get("DEMO_USER_PASSWORD") == creds["demo_password"]
        )


def test_no_tool_puts_a_password_on_a_command_line():
    sources = [ROOT / "manage_all.py", ROOT / "tests" / "e2e" / "system.py", ROOT / "compose.yaml"]
    sources += sorted((ROOT / "infra").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    offenders = [str(p.relative_to(ROOT)) for p in sources if re.search(r"--password\b(?!-stdin)", p.read_text())]

    assert offenders == []


# --- ensure_operator --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_operator_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPERATOR_PASSWORD", "Operator-Pass-1")

    call_command("ensure_operator", "--email", "op@example.com", stdout=io.StringIO())

    user = get_user_model().objects.get(username="op")
    assert user.is_superuser and user.check_password("Operator-Pass-1")


@pytest.mark.django_db
def test_ensure_operator_takes_the_password_from_stdin(monkeypatch):
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("From-Stdin-Pass-2\n"))

    call_command("ensure_operator", "--email", "op@example.com", "--password-stdin", stdout=io.StringIO())

    assert get_user_model().objects.get(username="op").check_password("From-Stdin-Pass-2")


@pytest.mark.django_db
def test_ensure_operator_refuses_a_password_on_the_command_line_and_changes_nothing(monkeypatch):
    monkeypatch.setenv("OPERATOR_PASSWORD", "Operator-Pass-1")

    with pytest.raises(CommandError, match="not accepted"):
        call_command("ensure_operator", "--email", "op@example.com", "--password", "On-Argv-3")
    monkeypatch.delenv("OPERATOR_PASSWORD")
    with pytest.raises(CommandError, match="no password"):
        call_command("ensure_operator", "--email", "op@example.com")

    assert not get_user_model().objects.exists()
