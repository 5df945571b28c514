"""Run namespaces: made by a test run or a benchmark, removed when it ends, swept when it died.

    python infra/namespaces.py create [--prefix t] [--owner PID]   # prints the namespace's environment (JSON)
    python infra/namespaces.py remove NS
    python infra/namespaces.py sweep       # remove every namespace whose owner process is gone
    python infra/namespaces.py list

A namespace (common/namespace.py) has its own Kafka topics and consumer groups, databases on the shared
cluster, etcd registry prefix, Redis keys, Celery queues and an nginx gateway on a port of its own; the real
platform (the empty namespace) is never touched. Its record, .run/ns/<ns>/namespace.json, names the process
that owns it: when that process is gone, the next run's sweep stops what is left of it and deletes it all.
Runs with the project's virtualenv (confluent-kafka, redis, etcd3gw); the infrastructure must be up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import components as infra

# Imported now, not in remove(): a benchmark removes its namespace from an atexit hook, when imports that start
# threads (etcd3gw's) are refused.
import redis

from common import etcd, namespace
from common.kafka import admin_client, delete_acls, delete_namespace_topics, ensure_namespace

RECORD = "namespace.json"


@dataclass
class Namespace:
    name: str
    owner_pid: int
    gateway_port: int

    @property
    def env(self) -> dict[str, str]:
        """What every process of the namespace runs with."""
        return {namespace.ENV: self.name}  # the rest follows from the name (its gateway port: from its record)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bootstrap() -> str:
    return f"127.0.0.1:{infra.KAFKA_PORT}"


def _pid_alive(pid: int) -> bool:
    return infra.pid_alive(pid)


def records() -> list[Namespace]:
    found = []
    for path in sorted((infra.RUN / "ns").glob(f"*/{RECORD}")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads(path.read_text())
            found.append(Namespace(data["name"], int(data["owner_pid"]), int(data["gateway_port"])))
    return found


def processes(ns: str) -> list[int]:
    """Every live process started with PLATFORM_NAMESPACE=ns (read from /proc: what it was started with)."""
    marker = f"{namespace.ENV}={namespace.validate(ns)}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_processes(ns: str, *, timeout: float = 10.0) -> int:
    """SIGTERM every process of the namespace, SIGKILL what is left after the timeout; returns how many."""
    pids = processes(ns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def create(prefix: str = "t", *, owner_pid: int | None = None, partitions: int | None = None) -> Namespace:
    """A new namespace with its databases, topics and gateway; owned by owner_pid (default: this process)."""
    sweep()
    name = namespace.validate(f"{prefix}{secrets.token_hex(3)}")
    ns = Namespace(name, owner_pid or os.getpid(), _free_port())
    home = infra.namespace_dir(name)
    home.mkdir(parents=True)
    # The record first: whatever a crash leaves from here on, the next sweep finds and removes.
    (home / RECORD).write_text(json.dumps({**ns.__dict__, "created_at": time.time()}))
    infra.Postgres().ensure_databases(name)
    ensure_namespace(_bootstrap(), name, partitions=partitions or infra.KAFKA_PARTITIONS)  # topics and ACLs
    infra.Gateway(name, ns.gateway_port).up()
    return ns


def remove(name: str) -> None:
    """Stop what runs in the namespace and delete everything it has. Never the real platform's."""
    if not namespace.validate(name):
        raise ValueError("the real platform (empty namespace) is never removed")
    home = infra.namespace_dir(name)
    record = next((r for r in records() if r.name == name), None)
    kill_processes(name)
    if record is not None:
        infra.Gateway(name, record.gateway_port).down()
    delete_namespace_topics(_bootstrap(), name)
    delete_acls(_bootstrap(), name)
    admin = admin_client(_bootstrap())
    groups = [g.group_id for g in admin.list_consumer_groups().result().valid if g.group_id.startswith(f"{name}.")]
    for future in admin.delete_consumer_groups(groups).values() if groups else []:
        with contextlib.suppress(Exception):  # a group still emptying: Kafka expires it on its own
            future.result()
    infra.Postgres().drop_databases(name)
    # As the user that wrote the entries: its role covers every namespace's registry, and root stays infra up's.
    etcd.local_client(etcd.SERVICES, port=infra.ETCD_PORT).delete_prefix(namespace.registry_prefix(name))
    keys = redis.Redis(host="127.0.0.1", port=infra.REDIS_PORT)
    for batch in _batches(keys.scan_iter(match=f"{namespace.redis_prefix(name)}*", count=1000), 500):
        keys.delete(*batch)
    shutil.rmtree(home, ignore_errors=True)


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def sweep() -> list[str]:
    """Remove every namespace whose owner is gone (a killed run's), and half-made folders with no record."""
    removed = []
    for record in records():
        if not _pid_alive(record.owner_pid):
            infra.say(f"removing namespace {record.name} left by process {record.owner_pid}")
            remove(record.name)
            removed.append(record.name)
    for home in (infra.RUN / "ns").glob("*"):
        if home.is_dir() and not (home / RECORD).exists() and time.time() - home.stat().st_mtime > 60:
            shutil.rmtree(home, ignore_errors=True)
    return removed


@contextlib.contextmanager
def run_namespace(prefix: str) -> Iterator[Namespace]:
    """Create a namespace for this process, put it in os.environ for what it starts, remove it at the end.

    The caller turns SIGTERM into an exception (see `exit_on_signals`), so the removal runs on a signal too.
    """
    ns = create(prefix)
    previous = {k: os.environ.get(k) for k in ns.env}
    os.environ.update(ns.env)
    try:
        yield ns
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        remove(ns.name)


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end this process the way Ctrl-C does, so `finally` blocks and atexit hooks run."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_create = sub.add_parser("create")
    p_create.add_argument("--prefix", default="t")
    p_create.add_argument("--owner", type=int, default=None, help="the owning process (default: the caller)")
    p_remove = sub.add_parser("remove")
    p_remove.add_argument("name")
    sub.add_parser("sweep")
    sub.add_parser("list")
    args = parser.parse_args(argv)
    try:
        if args.action == "create":
            with contextlib.redirect_stdout(sys.stderr):  # progress; stdout is the environment alone
                ns = create(args.prefix, owner_pid=args.owner or os.getppid())
            print(json.dumps(ns.env))
        elif args.action == "remove":
            remove(args.name)
        elif args.action == "sweep":
            print(json.dumps(sweep()))
        else:
            for record in records():
                state = "running" if _pid_alive(record.owner_pid) else "owner gone"
                print(f"{record.name:12} owner {record.owner_pid:<8} gateway :{record.gateway_port}  {state}")
    except (infra.InfraError, namespace.NamespaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
