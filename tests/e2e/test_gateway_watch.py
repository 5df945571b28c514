"""The gateway watcher against real etcd and nginx: no registration is lost, and no registry entry reaches nginx
unchecked.

Each test runs its own watcher (`gateway_watcher` of the process table) in a namespace of this module's own, with
its own registry prefix and nginx: the session's `watcher` fixture, which follows the test run's registry,
could otherwise render what this module's watcher missed. The instances are small HTTP servers that answer like
a service (200, `X-Served-By`), registered as common/discovery.py registers a web server: as etcd user
platform-services (the watcher reads as platform-watcher).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gateway  # infra/gateway.py (conftest puts infra/ on the path)
import pytest

from common import etcd, namespace
from common.testing.http import http
from tests.e2e.conftest import ROOT, RunningProcess, manage_all, namespaces

ROUTES = tomllib.loads((ROOT / "infra" / "routes.toml").read_text())


@dataclasses.dataclass
class Isolated:
    """A namespace of this module's: its registry prefix, its gateway, and an etcd client."""

    name: str
    prefix: str
    url: str
    upstreams_path: Path
    etcd: etcd.Client

    def upstreams(self) -> dict[str, list[str]]:
        """service -> the `server` addresses nginx's rendered upstreams.conf holds."""
        text = self.upstreams_path.read_text()
        return {
            name: re.findall(r"^\s*server (\S+) ", body, re.M)
            for name, body in re.findall(r"^upstream (\S+) \{\n(.*?)^\}", text, re.M | re.S)
        }


@pytest.fixture(scope="module")
def isolated() -> Iterator[Isolated]:
    ns = namespaces.create("gw")
    try:
        yield Isolated(
            name=ns.name,
            prefix=namespace.registry_prefix(ns.name),
            url=f"http://127.0.0.1:{manage_all.infra.gateway_port(ns.name)}",
            upstreams_path=manage_all.infra.gateway_home(ns.name) / "upstreams.conf",
            etcd=etcd.local_client(etcd.SERVICES, port=manage_all.infra.ETCD_PORT),
        )
    finally:
        namespaces.remove(ns.name)


@pytest.fixture
def registry(isolated) -> Iterator[Isolated]:
    """The isolated namespace with an empty registry before and after the test."""
    isolated.etcd.delete_prefix(isolated.prefix)
    yield isolated
    isolated.etcd.delete_prefix(isolated.prefix)


@contextlib.contextmanager
def start_watcher(ns: Isolated, log_dir, **env: str) -> Iterator[RunningProcess]:
    spec = next(p for p in manage_all.process_table() if p.name == "gateway_watcher")
    proc = dataclasses.replace(spec, name=f"gateway_watcher_{ns.name}_{uuid.uuid4().hex[:6]}")
    running = RunningProcess(proc, log_dir, {namespace.ENV: ns.name, **env})
    try:
        yield running
    finally:
        running.stop()


def watcher_log(running: RunningProcess) -> list[dict]:
    return [json.loads(line) for line in running.log().splitlines() if line.startswith("{")]


@contextlib.contextmanager
def fake_instance(service: str) -> Iterator[str]:
    """An HTTP server on a free port that answers every GET as `service` would; yields its address."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "service": service}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", f"{service}@{address}")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # quiet: the test reads the watcher's log, not these
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()


def register(ns: Isolated, service: str, address: str) -> str:
    """Put an entry as common.discovery.Registration does (under a lease); returns its key."""
    key = f"{ns.prefix}{service}/{uuid.uuid4().hex[:12]}"
    value = {"service": service, "address": address, "health": f"http://{address}/healthz", "pid": 0}
    ns.etcd.put(key, json.dumps(value).encode(), lease=ns.etcd.lease(ttl=60))
    return key


def wait_for(check, *, timeout: float, what: str) -> float:
    """Poll until check() is true; returns when (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


def served_by(ns: Isolated, path: str = "/api/orders/") -> str | None:
    return http("GET", f"{ns.url}{path}", timeout=5).headers.get("X-Served-By")


def wait_routed(ns: Isolated, address: str, *, timeout: float) -> None:
    wait_for(
        lambda: served_by(ns) == f"order_svc@{address}", timeout=timeout, what=f"the gateway did not route to {address}"
    )


# --- no registration is lost --------------------------------------------------------------------------------

WATCH_DELAY_S = 5.0


def test_an_instance_registered_between_the_read_and_the_watch_is_routed(registry, log_dir):
    """The watcher pauses between its registry read and its watch (GATEWAY_WATCH_DELAY_S); one registers then."""
    with fake_instance("order_svc") as first, fake_instance("order_svc") as second:
        register(registry, "order_svc", first)
        env = {"GATEWAY_WATCH_DELAY_S": str(WATCH_DELAY_S), "PLATFORM_GATEWAY_RESYNC_S": "600"}  # no resync
        with start_watcher(registry, log_dir, **env) as watcher:
            read = wait_for(lambda: registry.upstreams().get("order_svc") == [first], timeout=30, what="the first read")
            register(registry, "order_svc", second)
            assert time.monotonic() - read < WATCH_DELAY_S - 2, "registered too late to be inside the window"

            wait_routed(registry, second, timeout=WATCH_DELAY_S + 10)

            assert registry.upstreams()["order_svc"] == sorted([first, second])
            assert [e["message"] for e in watcher_log(watcher)].count("watch lost") == 0


def test_resyncs_leave_nginx_alone_while_nothing_changes_and_the_watch_goes_on(registry, log_dir):
    with fake_instance("order_svc") as first, fake_instance("order_svc") as second:
        register(registry, "order_svc", first)
        with start_watcher(registry, log_dir, PLATFORM_GATEWAY_RESYNC_S="1") as watcher:
            wait_routed(registry, first, timeout=30)
            rendered = registry.upstreams_path.stat().st_mtime_ns
            changes = [e["message"] for e in watcher_log(watcher)].count("upstreams changed")
            rounds = [e["message"] for e in watcher_log(watcher)].count("watching")

            time.sleep(4.5)

            messages = [e["message"] for e in watcher_log(watcher)]
            assert messages.count("watching") >= rounds + 3, "the registry was not read again every second"
            assert messages.count("upstreams changed") == changes, "nginx was reloaded with nothing changed"
            assert registry.upstreams_path.stat().st_mtime_ns == rendered
            register(registry, "order_svc", second)
            wait_routed(registry, second, timeout=10)
            assert "watch lost" not in [e["message"] for e in watcher_log(watcher)]


# --- only checked entries reach nginx -----------------------------------------------------------------------

HOSTILE = {
    # key under the prefix -> (value as stored, why the watcher skips it)
    "order_svc/inject": (
        {"service": "order_svc", "address": "127.0.0.1:1; } server evil.example:80; upstream x {"},
        "the address is not host:port",
    ),
    "order_svc/newline": (
        {"service": "order_svc", "address": "127.0.0.1:1\nserver 10.0.0.1:80"},
        "the address is not host:port",
    ),
    "order_svc/option": ({"service": "order_svc", "address": "127.0.0.1:80 backup"}, "the address is not host:port"),
    "order_svc/brace": ({"service": "order_svc", "address": "127.0.0.1:80}"}, "the address is not host:port"),
    "order_svc/port0": ({"service": "order_svc", "address": "127.0.0.1:0"}, "the address is not host:port"),
    "order_svc/bigport": ({"service": "order_svc", "address": "127.0.0.1:70000"}, "the address is not host:port"),
    "order_svc/badip": ({"service": "order_svc", "address": "300.0.0.1:80"}, "the address is not host:port"),
    "order_svc/noport": ({"service": "order_svc", "address": "127.0.0.1"}, "the address is not host:port"),
    "order_svc/number": ({"service": "order_svc", "address": 8000}, "the address is not host:port"),
    "order_svc/noaddress": ({"service": "order_svc"}, "the address is not host:port"),
    "evil_svc/x": ({"service": "evil_svc", "address": "127.0.0.1:2"}, "the service has no route in infra/routes.toml"),
    "order_svc/listed": (
        {"service": ["order_svc"], "address": "127.0.0.1:2"},
        "the service has no route in infra/routes.toml",
    ),
    "user_svc/other": ({"service": "order_svc", "address": "127.0.0.1:3"}, "the service is not the one the key names"),
    "order_svc/a/b": (
        {"service": "order_svc", "address": "127.0.0.1:4"},
        "the key is not <prefix><service>/<instance id>",
    ),
    "order_svc/garbage": (b"{not json", "the value is not JSON"),
    "order_svc/binary": (b"\xff\xfe\x00\x01", "the value is not JSON"),
    "order_svc/deep": (b"[" * 100_000, "the value is not JSON"),
    "order_svc/array": ([1, 2], "the value is not a JSON object"),
}


def test_hostile_registry_entries_are_skipped_and_logged_and_only_the_valid_instance_is_rendered(registry, log_dir):
    with fake_instance("order_svc") as valid, start_watcher(registry, log_dir) as watcher:
        for suffix, (value, _why) in HOSTILE.items():
            registry.etcd.put(
                f"{registry.prefix}{suffix}", value if isinstance(value, bytes) else json.dumps(value).encode()
            )
        register(registry, "order_svc", valid)  # last: once it is routed, every hostile entry has been read

        wait_routed(registry, valid, timeout=30)

        assert registry.upstreams() == {svc: [gateway.NO_INSTANCE] for svc in ROUTES} | {"order_svc": [valid]}
        assert "evil" not in registry.upstreams_path.read_text()
        skipped = [e for e in watcher_log(watcher) if e["message"] == "registry entry skipped"]
        assert {e["key"].removeprefix(registry.prefix): e["reason"] for e in skipped} == {
            suffix: why for suffix, (_value, why) in HOSTILE.items()
        }
        assert len(skipped) == len(HOSTILE), "an entry was logged more than once"
        assert all(e["level"] == "WARNING" for e in skipped)
        assert "watch lost" not in [e["message"] for e in watcher_log(watcher)]


@pytest.mark.parametrize(
    "address", ["127.0.0.1:8000", "10.1.2.3:1", "localhost:65535", "order-svc:8000", "web.internal.example:443"]
)
def test_host_port_addresses_are_valid(address):
    assert gateway.valid_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:1; } server evil",
        "127.0.0.1:80\n",
        "127.0.0.1:80 ",
        " 127.0.0.1:80",
        "127.0.0.1:80;",
        "{127.0.0.1:80",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:080",
        "127.0.0.1:",
        "127.0.0.1",
        "256.0.0.1:80",
        "127.0.0.01:80",
        "1.2.3:80",
        "[::1]:80",
        "unix:/tmp/socket",
        "-host:80",
        "host_name:80",
        "a" * 64 + ":80",
        "",
        None,
        8000,
    ],
)
def test_anything_else_is_not_a_valid_address(address):
    assert not gateway.valid_address(address)


def test_rendering_replaces_each_file_whole_and_leaves_unchanged_ones_alone(tmp_path):
    # nginx may read the files at any moment (a reload by the watcher, a start by `infra up`): a file truncated
    # and then written would be read half-written now and then, and stay nginx's configuration.
    gateway.render({}, home=tmp_path, port=18000)
    before = {path.name: path.stat() for path in tmp_path.iterdir() if path.is_file()}

    gateway.render({}, home=tmp_path, port=18000)
    unchanged = {path.name: path.stat() for path in tmp_path.iterdir() if path.is_file()}
    gateway.render({"order_svc": ["127.0.0.1:1234"]}, home=tmp_path, port=18000)

    assert {"nginx.conf", "routes.conf", "upstreams.conf", "binance.js", "proxy_headers.conf"} <= set(before)
    assert {n: s.st_mtime_ns for n, s in unchanged.items()} == {n: s.st_mtime_ns for n, s in before.items()}
    upstreams = tmp_path / "upstreams.conf"
    assert upstreams.stat().st_ino != before["upstreams.conf"].st_ino, "a new file renamed over the old one"
    assert "server 127.0.0.1:1234" in upstreams.read_text()
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"
