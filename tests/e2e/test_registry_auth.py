"""The registry behind etcd's auth: only a signed-in client reads it, only the services' user writes it.

Against the shared etcd (auth on since `infra up`), in registry prefixes of this module's own; and against a
private etcd started here with a 2 s token TTL, for what takes the shared one minutes (tokens that expire) or
would disturb it (a restart, auth switched on under running clients, a password that no longer matches).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import etcd3gw
import etcd_auth  # infra/etcd_auth.py (conftest puts infra/ on the path)
import pytest
from etcd3gw.exceptions import Etcd3Exception
from etcd3gw.lease import Lease

from common import credentials, discovery, namespace
from common.etcd import SERVICES, WATCHER, Client, EtcdAuthError, etcd_error, local_client
from tests.e2e.conftest import free_port, manage_all

ETCD_PORT = manage_all.infra.ETCD_PORT


def refused(call) -> str:
    """etcd's message for a call it refused (the test fails when etcd allowed it)."""
    with pytest.raises(Etcd3Exception) as caught:
        call()
    return etcd_error(caught.value)


@pytest.fixture
def ns() -> str:
    """A run namespace of this test's own: its registry prefix is under /platform/ns/, like every run's."""
    return f"auth{uuid.uuid4().hex[:12]}"


@pytest.fixture
def prefix(ns) -> Iterator[str]:
    """That namespace's registry prefix, emptied afterwards."""
    ours = namespace.registry_prefix(ns)
    yield ours
    local_client(SERVICES, port=ETCD_PORT).delete_prefix(ours)


def entry(address: str = "127.0.0.1:8001") -> str:
    return json.dumps({"service": "order_svc", "address": address, "health": f"http://{address}/healthz", "pid": 0})


# --- the shared etcd ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("registry", ["/platform/services/", "/platform/ns/"])
def test_an_anonymous_client_can_neither_read_nor_write_the_registry(registry, prefix):
    anonymous = etcd3gw.client(host="127.0.0.1", port=ETCD_PORT, timeout=5)
    local_client(SERVICES, port=ETCD_PORT).put(f"{prefix}order_svc/a", entry())
    key = f"{registry}order_svc/anonymous-{uuid.uuid4().hex[:8]}"

    assert refused(lambda: anonymous.get_prefix(registry)) == "etcdserver: user name is empty"
    assert refused(lambda: anonymous.get_prefix(prefix)) == "etcdserver: user name is empty"
    assert refused(lambda: anonymous.put(key, entry("10.6.6.6:80"))) == "etcdserver: user name is empty"
    assert refused(lambda: anonymous.delete_prefix(prefix)) == "etcdserver: user name is empty"
    watcher = local_client(WATCHER, port=ETCD_PORT)
    assert watcher.get(key) == []
    assert watcher.get(f"{prefix}order_svc/a") == [entry().encode()]


def test_the_watcher_user_reads_the_registry_and_can_change_nothing(prefix):
    services, watcher = local_client(SERVICES, port=ETCD_PORT), local_client(WATCHER, port=ETCD_PORT)
    lease = services.lease(ttl=30)
    services.put(f"{prefix}order_svc/a", entry(), lease=lease)

    assert [value for value, _ in watcher.get_prefix(prefix)] == [entry().encode()]
    assert refused(lambda: watcher.put(f"{prefix}order_svc/a", entry("10.6.6.6:80"))) == "etcdserver: permission denied"
    assert refused(lambda: watcher.put(f"{prefix}order_svc/b", entry())) == "etcdserver: permission denied"
    assert refused(lambda: watcher.delete(f"{prefix}order_svc/a")) == "etcdserver: permission denied"
    assert refused(lambda: Lease(lease.id, watcher).revoke()) == "etcdserver: permission denied"
    assert [value for value, _ in services.get_prefix(prefix)] == [entry().encode()]
    lease.revoke()


def test_the_services_user_registers_in_the_registry_and_writes_nothing_else(ns, prefix, monkeypatch):
    monkeypatch.setenv("ETCD_URL", f"http://127.0.0.1:{ETCD_PORT}")
    monkeypatch.setenv(namespace.ENV, ns)
    registration = discovery.Registration(service="order_svc", address="127.0.0.1:8123", ttl_s=3)
    registration.start()
    try:
        assert discovery.wait_registered("order_svc", "127.0.0.1:8123")
    finally:
        registration.stop()
    services = local_client(SERVICES, port=ETCD_PORT)

    assert services.get_prefix(prefix) == []  # its clean stop revoked the lease
    for outside in ("/platform/other", "/platform/servicesx/order_svc/a", "/elsewhere"):
        assert refused(lambda key=outside: services.put(key, entry())) == "etcdserver: permission denied"
    assert refused(lambda: services.get_prefix("/")) == "etcdserver: permission denied"


def test_a_token_etcd_refuses_is_replaced_and_the_call_made_again(prefix):
    services, watcher = local_client(SERVICES, port=ETCD_PORT), local_client(WATCHER, port=ETCD_PORT)
    services.put(f"{prefix}order_svc/a", entry())
    for client in (services, watcher):
        client.get(f"{prefix}order_svc/a")
        client.session.headers["Authorization"] = "expired.1"  # what a token is after its TTL or a restart

    services.put(f"{prefix}order_svc/b", entry("127.0.0.1:8002"))

    assert len(watcher.get_prefix(prefix)) == 2
    assert watcher.session.headers["Authorization"] != "expired.1"


def test_a_watch_started_with_an_expired_token_still_sees_the_registry_change(prefix):
    watcher = local_client(WATCHER, port=ETCD_PORT)
    watcher.get_prefix(prefix)
    watcher.session.headers["Authorization"] = "expired.1"
    events, cancel = watcher.watch_prefix(prefix)
    try:
        local_client(SERVICES, port=ETCD_PORT).put(f"{prefix}order_svc/a", entry())
        event = next(events)  # etcd would have created the watch canceled, and this would wait forever
    finally:
        cancel()

    assert event["kv"]["key"] == f"{prefix}order_svc/a".encode()


def test_a_wrong_password_is_named_and_never_sent_anonymously():
    client = Client(host="127.0.0.1", port=ETCD_PORT, user=WATCHER, password="not-the-password")

    with pytest.raises(EtcdAuthError, match="etcd refused the password of user platform-watcher"):
        client.get_prefix("/platform/services/")
    assert "Authorization" not in client.session.headers


def test_infra_up_changes_nothing_on_the_secured_etcd():
    assert etcd_auth.secure(f"http://127.0.0.1:{ETCD_PORT}") == []


# --- a private etcd -----------------------------------------------------------------------------------------


@dataclass
class PrivateEtcd:
    home: Path
    port: int
    peer_port: int
    passwords: dict[str, str]
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        client, peer = self.url, f"http://127.0.0.1:{self.peer_port}"
        with (self.home / "etcd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *("etcd", "--name", "private", "--data-dir", str(self.home / "data")),
                    *("--listen-client-urls", client, "--advertise-client-urls", client),
                    *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
                    *("--initial-cluster", f"private={peer}", "--auth-token-ttl", "2"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not manage_all.infra.port_open(self.port):
            assert self.process.poll() is None and time.monotonic() < deadline, (self.home / "etcd.log").read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def client(self, user: str) -> Client:
        return Client(host="127.0.0.1", port=self.port, user=user, password=self.passwords[user])

    def secure(self) -> list[str]:
        return etcd_auth.secure(self.url, self.passwords.__getitem__)


@pytest.fixture
def private(tmp_path) -> Iterator[PrivateEtcd]:
    # The run installs what it needs, as `infra up` does; ensure_packages fails saying what to install otherwise.
    manage_all.infra.ensure_packages({"etcd": "etcd-server"})
    users = ["root", *etcd_auth.USERS]
    etcd = PrivateEtcd(tmp_path, free_port(), free_port(), {user: uuid.uuid4().hex for user in users})
    etcd.start()
    yield etcd
    etcd.stop()


def test_setup_turns_auth_on_once_and_a_second_run_changes_nothing(private):
    anonymous = etcd3gw.client(host="127.0.0.1", port=private.port, timeout=5)
    anonymous.put("/platform/services/order_svc/a", entry())  # auth is off: anyone writes

    changes = private.secure()

    assert changes[-1] == "auth enabled"
    assert {"user root added", "user platform-services added", "user platform-watcher added"} <= set(changes)
    assert private.secure() == []
    assert refused(lambda: anonymous.get("/platform/services/order_svc/a")) == "etcdserver: user name is empty"
    assert private.client(WATCHER).get("/platform/services/order_svc/a") == [entry().encode()]


def test_clients_running_when_auth_is_turned_on_sign_in_and_go_on(private):
    services = private.client(SERVICES)
    lease = services.lease(ttl=30)
    services.put("/platform/services/order_svc/a", entry(), lease=lease)  # auth off: no token
    assert "Authorization" not in services.session.headers

    private.secure()

    services.put("/platform/services/order_svc/b", entry(), lease=lease)
    assert lease.refresh() > 0
    assert len(private.client(WATCHER).get_prefix("/platform/services/")) == 2


def test_a_client_with_no_password_works_only_while_etcd_has_auth_off(private):
    def no_password() -> str:
        raise credentials.MissingSecret("no local secret etcd/platform-services: run infra up first")

    unconfigured = Client(host="127.0.0.1", port=private.port, user=SERVICES, password=no_password)
    unconfigured.put("/platform/services/order_svc/a", entry())  # compose's etcd: auth off, no token needed

    private.secure()

    with pytest.raises(credentials.MissingSecret, match="run infra up first"):
        unconfigured.put("/platform/services/order_svc/b", entry())
    assert private.client(WATCHER).get("/platform/services/order_svc/b") == []


def test_expired_tokens_and_a_restart_cost_the_clients_nothing(private):
    private.secure()
    services, watcher = private.client(SERVICES), private.client(WATCHER)
    lease = services.lease(ttl=30)
    services.put("/platform/services/order_svc/a", entry(), lease=lease)
    watcher.get_prefix("/platform/services/")
    token = watcher.session.headers["Authorization"]

    time.sleep(3)  # past the 2 s TTL
    assert [value for value, _ in watcher.get_prefix("/platform/services/")] == [entry().encode()]
    assert watcher.session.headers["Authorization"] != token
    events, cancel = watcher.watch_prefix("/platform/services/")
    try:
        time.sleep(3)  # an open watch outlives its token
        services.put("/platform/services/order_svc/b", entry(), lease=lease)
        assert next(events)["kv"]["key"] == b"/platform/services/order_svc/b"
    finally:
        cancel()

    private.stop()
    private.start()  # etcd forgets every token
    assert lease.refresh() > 0
    assert len(watcher.get_prefix("/platform/services/")) == 2


def test_setup_resets_a_password_that_differs_from_the_secret_and_stops_on_roots(private):
    private.secure()
    services = private.client(SERVICES)
    services.get_prefix("/platform/services/")
    root = etcd_auth.Api(private.url)
    root.sign_in("root", private.passwords["root"])
    root.call("auth/user/changepw", {"name": SERVICES, "password": "someone-elses"})

    assert private.secure() == ["user platform-services: password set from its secret"]
    assert services.get_prefix("/platform/services/") == []  # it signed in again with the secret

    root.call("auth/user/changepw", {"name": "root", "password": "someone-elses"})
    with pytest.raises(etcd_auth.EtcdAuthSetupError, match="refuses root's password"):
        private.secure()


def test_etcd_auth_runs_with_the_standard_library_alone(tmp_path):
    # `infra up` runs before the virtualenv exists: no etcd3gw, no requests, nothing outside the standard library.
    script = "import sys; sys.path.insert(0, 'infra'); import etcd_auth; print(sorted(etcd_auth.USERS))"
    result = subprocess.run(
        [sys.base_prefix + "/bin/python3", "-I", "-c", script], cwd=manage_all.ROOT, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sorted(etcd_auth.USERS))
