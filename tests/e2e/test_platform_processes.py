"""Every service, run as `up` runs it (gunicorn), is alive and ready against the real database and broker."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from common.testing.http import http
from tests.e2e.conftest import ROOT, RunningProcess, free_port, manage_all, wait_http


@pytest.mark.parametrize("service", manage_all.SERVICES)
def test_each_service_is_live_and_ready_over_http(web_servers, service):
    health = http("GET", f"{web_servers[service]}/healthz")
    ready = http("GET", f"{web_servers[service]}/readyz")

    assert health.status == 200 and health.json()["service"] == service
    assert ready.status == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}


def test_readyz_names_the_database_when_it_is_unreachable(log_dir):
    port = free_port()
    proc = next(
        p for p in manage_all.process_table(ports={s: [port] for s in manage_all.SERVICES}) if p.name == "order_svc_web"
    )
    dead_db = manage_all.infra.database_url("order_svc").replace(f":{manage_all.infra.PG_PORT}/", ":9/")
    server = RunningProcess(proc, log_dir, extra_env={"DATABASE_URL": dead_db})
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        result = http("GET", f"http://127.0.0.1:{port}/readyz")
    finally:
        server.stop()

    assert result.status == 503
    assert result.json()["failing"] == ["database"]
    assert result.json()["checks"]["kafka"] == "ok"


def _check(service: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(manage_all.PY), "manage.py", "check", *args],
        cwd=ROOT / service,
        env={**manage_all.service_env(service), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("service", manage_all.SERVICES)
def test_deploy_checks_pass_with_production_settings(service):
    production = {
        "PLATFORM_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "trade.example.com",
        # user_svc's API-key secrets are encrypted under it; production has no local default.
        "API_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    }

    result = _check(service, production, "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _check("user_svc", {"PLATFORM_ENV": "production"})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_production_refuses_to_start_user_svc_without_an_api_key_encryption_key():
    production = {
        "PLATFORM_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "trade.example.com",
    }

    result = _check("user_svc", production)

    assert result.returncode != 0
    assert "API_KEY_ENCRYPTION_KEY or API_KEY_ENCRYPTION_KEY_FILE is required" in result.stderr
