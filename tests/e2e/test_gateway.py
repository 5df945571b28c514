"""One front door: nginx routes by prefix to instances discovered through etcd, and answers its own errors."""

from __future__ import annotations

import signal
import time
import tomllib
import uuid

import pytest

from common.testing.http import http
from tests.e2e.conftest import ROOT, RunningProcess, free_port, manage_all

GATEWAY = f"http://127.0.0.1:{manage_all.infra.gateway_port()}"
ROUTES = tomllib.loads((ROOT / "infra" / "routes.toml").read_text())


def _served_by(path: str, **kwargs) -> str | None:
    return http("GET", f"{GATEWAY}{path}", **kwargs).headers.get("X-Served-By")


def _wait_routed(path: str, expect, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _served_by(path)
        if expect(seen):
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} was not routed as expected within {timeout}s (last: {seen})")


@pytest.mark.parametrize(
    ("service", "prefix"), [(svc, prefix) for svc, route in ROUTES.items() for prefix in route["prefixes"]]
)
def test_each_route_prefix_reaches_its_service(web_servers, watcher, service, prefix):
    path = prefix if prefix.endswith("/") else prefix + "/"
    _wait_routed(path, lambda by: by is not None and by.startswith(f"{service}@"))


@pytest.mark.parametrize("service", list(ROUTES))
def test_each_service_liveness_is_reachable_through_the_gateway(web_servers, watcher, service):
    _wait_routed(f"/health/{service}", lambda by: by is not None and by.startswith(f"{service}@"))

    assert http("GET", f"{GATEWAY}/health/{service}").json() == {"status": "ok", "service": service}


def test_an_unknown_path_is_a_json_404_from_the_gateway(watcher):
    result = http("GET", f"{GATEWAY}/no/such/route")

    assert result.status == 404
    assert result.json() == {"code": "not_found", "message": "no route for /no/such/route", "details": {}}
    assert "X-Served-By" not in result.headers


def test_request_id_comes_back_unchanged_and_reaches_the_service_log(web_servers, watcher, log_dir):
    given = f"e2e-{uuid.uuid4().hex}"
    _wait_routed("/api/orders/", lambda by: by is not None)

    sent = http("GET", f"{GATEWAY}/api/orders/", headers={"X-Request-ID": given})
    made = http("GET", f"{GATEWAY}/api/orders/")

    assert sent.headers["X-Request-ID"] == given
    assert len(made.headers["X-Request-ID"]) == 32
    deadline = time.monotonic() + 5
    while given not in (log_dir / "order_svc_web.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert given in (log_dir / "order_svc_web.log").read_text()


def test_auth_endpoints_are_rate_limited_per_client_with_a_json_429(web_servers, watcher):
    statuses = [http("POST", f"{GATEWAY}/api/auth/login", json_body={}).status for _ in range(40)]

    assert 429 in statuses
    limited = next(
        r for r in (http("POST", f"{GATEWAY}/api/auth/login", json_body={}) for _ in range(20)) if r.status == 429
    )
    assert limited.json()["code"] == "throttled"


def test_a_request_body_over_the_limit_is_refused_with_json(watcher):
    result = http("POST", f"{GATEWAY}/api/orders/", json_body={"pad": "x" * 2_000_000})

    assert result.status == 413
    assert result.json()["code"] == "too_large"


def test_the_combined_docs_page_lists_every_service_schema(web_servers, watcher):
    page = http("GET", f"{GATEWAY}/docs/", headers={"Accept": "text/html"})

    assert page.status == 200
    for service in ROUTES:
        assert f"/docs/{service}/schema" in page.text
    _wait_routed("/api/orders/", lambda by: by is not None)
    schema = http("GET", f"{GATEWAY}/docs/order_svc/schema", headers={"Accept": "application/json"})
    assert schema.status == 200 and schema.json()["openapi"].startswith("3.")
    assert http("GET", f"{GATEWAY}/docs/static/swagger-ui-bundle.js").status == 200


def test_instances_come_and_go_behind_the_gateway_without_a_restart(web_servers, watcher, log_dir):
    """Two extra order instances serve; one SIGKILLed leaves the registry within its lease; a later one joins."""
    table = {p.name: p for p in manage_all.process_table(ports={s: [free_port()] for s in manage_all.SERVICES})}
    spec = table["order_svc_web"]

    def start(port: int) -> RunningProcess:
        proc = manage_all.Process(f"order_svc_web_{port}", "order_svc", [*spec.command])
        proc.command[proc.command.index("--bind") + 1] = f"127.0.0.1:{port}"
        return RunningProcess(proc, log_dir)

    ports = [free_port(), free_port()]
    extra = [start(p) for p in ports]
    try:
        for port in ports:
            _wait_routed("/api/orders/", lambda by, port=port: by is not None and by.endswith(f":{port}"), 30)

        extra[0].stop(signal.SIGKILL)
        started = time.monotonic()
        failures = 0
        while time.monotonic() - started < 12:
            result = http("GET", f"{GATEWAY}/api/orders/")
            failures += result.status >= 502
            time.sleep(0.05)
        upstreams = (manage_all.infra.gateway_home() / "upstreams.conf").read_text()
        assert f"127.0.0.1:{ports[0]}" not in upstreams, "the killed instance is still routed to"
        assert failures == 0, "requests failed while an instance died"

        third = free_port()
        extra.append(start(third))
        _wait_routed("/api/orders/", lambda by: by is not None and by.endswith(f":{third}"), 30)
    finally:
        for proc in extra:
            proc.stop()


def test_a_stopped_service_is_a_quick_json_502_not_a_hang(web_servers, watcher):
    _wait_routed("/api/transactions/", lambda by: by is not None and by.startswith("transaction_svc@"))
    web_servers.stop("transaction_svc", signal.SIGKILL)
    try:
        timings = []
        for _ in range(2):  # right after the kill (still registered), then once its lease has expired
            started = time.monotonic()
            result = http("GET", f"{GATEWAY}/api/transactions/", timeout=10)
            timings.append(time.monotonic() - started)
            assert result.status == 502
            assert result.json()["code"] == "bad_gateway"
            time.sleep(7)
        assert max(timings) < 2.0, timings
    finally:
        web_servers.start("transaction_svc")
