"""Cross-service tests: real service processes (the commands `manage_all.py up` runs) on free ports.

They run in a namespace of their own (topics, groups, databases, queues, registry and gateway; see
common/namespace.py): `manage_all.py test` makes one for the whole run, and a bare `pytest tests/e2e` makes its
own. Every process a test starts is stopped when the session ends, fails or gets SIGTERM/SIGINT/SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import manage_all  # noqa: E402 - the supervisor's process table is the one source of commands
from common import namespace  # noqa: E402
from common.testing.http import http  # noqa: E402

sys.path.insert(0, str(ROOT / "infra"))
import namespaces  # noqa: E402 - infra/namespaces.py

# Every process started and not yet stopped: whatever a test leaves is stopped when the session ends.
_RUNNING: set[RunningProcess] = set()
_OWN_NAMESPACE: list[str] = []


def pytest_configure(config) -> None:
    namespaces.exit_on_signals()  # SIGTERM/SIGHUP: pytest stops as on Ctrl-C and tears every fixture down
    if not namespace.current():
        ns = namespaces.create("e2e")
        os.environ.update(ns.env)
        _OWN_NAMESPACE.append(ns.name)
        manage_all.infra.say(f"e2e tests in namespace {ns.name}")


def pytest_unconfigure(config) -> None:
    RunningProcess.stop_all(list(_RUNNING), signal.SIGKILL, timeout=5)
    for name in _OWN_NAMESPACE:
        namespaces.remove(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningProcess:
    """One real process started from the platform's process table, with its output in a log file."""

    def __init__(self, proc: manage_all.Process, log_dir: Path, extra_env: dict[str, str] | None = None):
        self.spec = proc
        self.log_path = log_dir / f"{proc.name}.log"
        env = {**os.environ, **proc.environment(), **(extra_env or {})}
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                proc.command,
                cwd=proc.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNNING.add(self)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        _RUNNING.discard(self)
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    @staticmethod
    def stop_all(processes: list[RunningProcess], sig: int = signal.SIGTERM, timeout: float = 8.0) -> None:
        """Signal every process group at once, then SIGKILL what is still there after `timeout` in all."""
        for proc in processes:
            _RUNNING.discard(proc)
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, sig)
        deadline = time.monotonic() + timeout
        for proc in processes:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_http(url: str, *, status: int = 200, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = http("GET", url, timeout=5)
            if last.status == status:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last and last.status})")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("process-logs")


class WebServers(dict):
    """service -> base URL of its web server, plus the processes, so a test can stop and restart one."""

    def __init__(self, log_dir: Path):
        ports = {svc: [free_port()] for svc in manage_all.SERVICES}
        self.specs = {p.service: p for p in manage_all.process_table(ports=ports) if p.name.endswith("_web")}
        self.log_dir = log_dir
        self.processes: dict[str, RunningProcess] = {}
        super().__init__({svc: f"http://127.0.0.1:{ports[svc][0]}" for svc in manage_all.SERVICES})

    def start(self, service: str) -> None:
        self.processes[service] = RunningProcess(self.specs[service], self.log_dir)
        wait_http(f"{self[service]}/healthz", timeout=60)

    def stop(self, service: str, sig: int = signal.SIGTERM) -> None:
        self.processes.pop(service).stop(sig)


@pytest.fixture(scope="session")
def web_servers(log_dir) -> Iterator[WebServers]:
    """Every service's web server (gunicorn, as `up` runs it, registered in etcd) on a free port."""
    servers = WebServers(log_dir)
    try:
        for service in manage_all.SERVICES:
            servers.start(service)
        yield servers
    finally:
        for proc in servers.processes.values():
            proc.stop()


@pytest.fixture(scope="session")
def watcher(log_dir) -> Iterator[RunningProcess]:
    """The gateway watcher, as `up` runs it: renders upstreams from the registry and reloads nginx."""
    proc = next(p for p in manage_all.process_table() if p.name == "gateway_watcher")
    running = RunningProcess(proc, log_dir)
    yield running
    running.stop()
