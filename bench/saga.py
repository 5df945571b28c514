#!/usr/bin/env python
"""Order saga latency under open-loop order rates, against a bare PostgreSQL INSERT+COMMIT loop on the same cluster.

Starts the whole platform as `manage_all.py up` runs it (its own processes, free ports, the shared local
infrastructure), registers traders, then places marketable MARKET BUY orders at fixed rates (open loop, from this
separate process) while publishing trades. It reads `order-events` from Kafka like any downstream client and
reports, per rate: p50/p95/p99 of the POST latency, of the time to NEW (order.accepted seen) and of the time to
FILLED (order.filled with status FILLED seen), the last two counted from the moment the schedule meant the order
to go out; whether the rate was sustained (and if not, why); whether the sender kept its schedule and the CPU it
spent; and the CPU seconds every process group (web, consumers, Celery, PostgreSQL, Kafka, Zipkin, the bench, ...)
used while the orders went out, with the machine's idle time. Prints one JSON object; progress goes to stderr.

    .venv/bin/python bench/saga.py [--rates 50,100,200] [--seconds 30] [--tracing on|off]
    .venv/bin/python bench/saga.py --search [--seconds 15] [--start 50] [--cap 400] [--resolution 25]

Sustained: every order reached NEW and FILLED before the drain timeout, the sender kept >= 95 % of the rate,
p99 of the time to NEW stayed under 1 s, and the backlog stayed bounded (the last second's median time to NEW
at most 0.5 s above the first second's). `--search` doubles the rate from --start while sustained (halves it
while not, if --start already fails), then bisects between the last sustained and the first unsustained rate;
its steps stop early once enough orders are late that the step cannot be sustained any more.

The sender is one dispatcher (this process's main thread) and a pool of threads, each with its own keep-alive
connection (http.client), grown on demand up to --connections. When every connection is busy a POST waits:
then the POSTs, not the sender's CPU, set the pace (`all_connections_busy` counts those waits). It costs about
0.3 ms of CPU per order (against nginx it kept 800/s on 3-4 connections, p99 lag 2 ms); `sender_cpu_s` and
`sender_bottleneck` (behind the schedule with a connection free) show it per rate.

CPU per group is read from /proc (utime+stime, and the cutime+cstime of reaped children) from the first send to
the last POST answered; `others` is everything this run did not start (another engineer's tests included, its
biggest in `cpu_s_others_top`), `machine` the busy and idle time of all cores from /proc/stat.
SIGTERM or SIGINT stops every process the bench started, the trade feed and the Kafka reader, within ~10 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import pwd
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.tests.settings")

SUSTAINED_SEND_SHARE = 0.95  # the sender kept the schedule when it started >= 95 % of the rate's orders per second
SUSTAINED_NEW_P99_MS = 1000.0
SUSTAINED_GROWTH_MS = 500.0  # last second's median time to NEW over the first second's
LATE_AFTER_S = 3.0  # an order not NEW this long after its send time is late (early stop of a search step)
KEEPALIVE_S = 1.5  # under gunicorn's default keep-alive of 2 s: an idler connection is reopened, not reused
ORDERS_PER_TRADER = 1500  # 10 000 USDT of starting funds, ~5 USDT per order: keep well under 2000


_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[saga-bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


def baseline_commits_per_s(seconds: float = 5.0) -> float:
    """A bare INSERT + COMMIT loop on one connection, as fast as the cluster takes it."""
    import psycopg2

    from tests.e2e.conftest import manage_all

    conn = psycopg2.connect(manage_all.infra.database_url("order_svc"))
    with conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_commits (id bigserial primary key, payload text, at timestamptz)")
    conn.commit()
    count = 0
    started = time.perf_counter()
    with conn.cursor() as cursor:
        while time.perf_counter() - started < seconds:
            cursor.execute("INSERT INTO bench_commits (payload, at) VALUES (%s, now())", ["x" * 200])
            conn.commit()
            count += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


# --- signals -------------------------------------------------------------------------------------------------


class Interrupts:
    """SIGTERM and SIGINT end the run through SystemExit, so every `finally` stops what it started.

    A signal that arrives while a process is being started waits until it is recorded as running (else it would
    be left behind); signals during the clean-up are ignored, so a second Ctrl-C cannot cut it short.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._deferring = 0
        self._pending: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.stopping:
            progress(f"{signal.Signals(signum).name}: already stopping")
            return
        if self._deferring:
            self._pending = signum
            return
        self._exit(signum)

    def _exit(self, signum: int) -> None:
        self.stopping = True
        progress(f"{signal.Signals(signum).name}: stopping every process the bench started...")
        raise SystemExit(128 + signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending is not None and not self.stopping:
                self._exit(self._pending)


def start_platform(system, interrupts: Interrupts) -> None:
    """System.start_all, with each process start shielded from a signal until it is in `system.running`."""
    from tests.e2e.conftest import wait_http

    system.migrate()
    for name in system.specs:
        with interrupts.deferred():
            system.start(name)
    for url in system.urls.values():
        wait_http(f"{url}/readyz", timeout=120)


def stop_platform(system, grace: float = 6.0) -> None:
    """SIGTERM every process group at once, SIGKILL what is left after `grace`, then any straggler of their sessions.

    System.stop_all stops one process after the other, each with up to 15 s to go; all at once, everything is gone
    within `grace` plus a moment.
    """
    running = list(system.running.values())
    sessions = {rp.popen.pid for rp in running}
    for rp in running:
        if rp.popen.poll() is None:
            _killpg(rp.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = []
    for rp in running:
        try:
            rp.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(rp.popen.pid, signal.SIGKILL)
            rp.popen.wait()
            killed.append(rp.spec.name)
    if killed:
        progress(f"killed after {grace:.0f}s: {', '.join(killed)}")
    # RunningProcess starts each in a session of its own: a child that outlived its leader is still in it.
    for proc in read_processes().values():
        if proc.session in sessions and proc.pid != os.getpid():
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    system.running.clear()


def _killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# --- CPU accounting from /proc -------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")
GROUPS = (
    "web",
    "consumers",
    "celery",
    "postgres",
    "kafka",
    "zipkin",
    "redis",
    "bench",
    "platform_other",
    "infra_other",
    "others",
)


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    session: int
    start: int  # start time since boot, in clock ticks: with the pid, a process's identity (pids get reused)
    ticks: int  # utime + stime + cutime + cstime: a reaped child's time moves into its parent's, not away
    own_ticks: int  # utime + stime
    uid: int
    argv: list[str]


def read_processes() -> dict[int, ProcInfo]:
    procs: dict[int, ProcInfo] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            raw_argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            uid = entry.stat().st_uid
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is fields[0]
        procs[pid] = ProcInfo(
            pid=pid,
            ppid=int(fields[1]),
            session=int(fields[3]),
            start=int(fields[19]),
            ticks=sum(int(f) for f in fields[11:15]),
            own_ticks=int(fields[11]) + int(fields[12]),
            uid=uid,
            argv=[a.decode(errors="replace") for a in raw_argv.split(b"\0") if a],
        )
    return procs


def _postgres_uid() -> int | None:
    try:
        return pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None


class CpuMeter:
    """CPU seconds per process group between two snapshots of every process, plus the machine's idle time.

    The platform's processes are the bench's descendants, classified by their command line (RunningProcess puts
    each in a session of its own, so process groups say nothing), falling back to the name of the process-table
    entry they descend from; the shared infrastructure (PostgreSQL, Kafka, Zipkin, Redis) is counted whole.
    Anything else, another engineer's platform included, is `others`.
    """

    def __init__(self, system) -> None:
        self.system = system
        self.me = os.getpid()
        self.postgres_uid = _postgres_uid()

    def classify(self, proc: ProcInfo, procs: dict[int, ProcInfo], tops: dict[int, str]) -> str:
        joined = " ".join(proc.argv)
        exe = os.path.basename(proc.argv[0]) if proc.argv else ""
        if proc.pid == self.me:
            return "bench"
        if (self.postgres_uid is not None and proc.uid == self.postgres_uid) or exe == "postgres":
            return "postgres"
        if exe == "java" and "zipkin" in joined:
            return "zipkin"
        if exe == "java" and "kafka" in joined:
            return "kafka"
        if exe.startswith("redis-server"):
            return "redis"
        top = self._platform_top(proc, procs, tops)
        if top is not None:
            if "gunicorn" in joined:
                return "web"
            if "celery" in joined:
                return "celery"
            if "manage.py" in proc.argv and "consume" in proc.argv[proc.argv.index("manage.py") + 1 :][:1]:
                return "consumers"
            # a renamed command: the process-table entry it descends from says what it is
            if "_web" in top:
                return "web"
            if top.endswith(("_worker", "_beat")):
                return "celery"
            if "_consume_" in top:
                return "consumers"
            return "platform_other"
        if exe.startswith(("etcd", "nginx")) or joined.startswith("nginx:"):
            return "infra_other"
        return "others"

    def _platform_top(self, proc: ProcInfo, procs: dict[int, ProcInfo], tops: dict[int, str]) -> str | None:
        """The process-table name of the platform process `proc` is (or descends from), if it is one of ours."""
        seen = 0
        pid = proc.pid
        while pid in procs and seen < 64:
            if pid in tops:
                return tops[pid]
            if pid == self.me:
                return "descendant"
            pid = procs[pid].ppid
            seen += 1
        return None

    def snapshot(self) -> Snapshot:
        tops = {rp.popen.pid: name for name, rp in self.system.running.items()}
        procs = read_processes()
        snap = Snapshot(time.monotonic(), {}, _machine_ticks())
        for proc in procs.values():
            parent = procs.get(proc.ppid)
            snap.procs[(proc.pid, proc.start)] = Entry(
                group=self.classify(proc, procs, tops),
                ticks=proc.ticks,
                own_ticks=proc.own_ticks,
                parent=(parent.pid, parent.start) if parent else None,
                label=_label(proc),
            )
        return snap

    @staticmethod
    def delta(before: Snapshot, after: Snapshot) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """CPU seconds per group (and total), the machine's busy and idle time, and the biggest of `others`.

        A process that ended in between took its ticks away, and its reaper's cutime grew by its whole life: its
        ticks of before are taken from its parent's group, so the reaper's group gains just the part in the
        window, and a restarted broker reaped by someone else's shell does not count its whole life as theirs.
        """
        ticks = dict.fromkeys(GROUPS, 0)
        by_label: dict[str, int] = {}
        for key, entry in after.procs.items():
            old = before.procs.get(key)
            ticks[entry.group] += entry.ticks - (old.ticks if old else 0)
            if entry.group == "others":  # own time only: a shell's cutime grows by each child's whole life
                by_label[entry.label] = by_label.get(entry.label, 0) + entry.own_ticks - (old.own_ticks if old else 0)
        for key, entry in before.procs.items():
            if key not in after.procs:
                reaper = before.procs.get(entry.parent) if entry.parent else None
                ticks[(reaper or entry).group] -= entry.ticks
        cpu = {g: round(t / CLK_TCK, 2) for g, t in ticks.items()}
        cpu["total"] = round(sum(ticks.values()) / CLK_TCK, 2)
        (busy0, idle0), (busy1, idle1) = before.machine, after.machine
        busy, idle = (busy1 - busy0) / CLK_TCK, (idle1 - idle0) / CLK_TCK
        machine = {
            "window_s": round(after.at - before.at, 2),
            "cores": os.cpu_count(),
            "busy_s": round(busy, 2),
            "idle_s": round(idle, 2),
            "idle_fraction": round(idle / (busy + idle), 3) if busy + idle else None,
        }
        top = sorted(by_label.items(), key=lambda kv: -kv[1])[:5]
        return cpu, machine, {label: round(t / CLK_TCK, 2) for label, t in top if t / CLK_TCK >= 0.1}


@dataclass
class Entry:
    group: str
    ticks: int
    own_ticks: int
    parent: tuple[int, int] | None  # (pid, start) of the parent: the reaper when it ends
    label: str


@dataclass
class Snapshot:
    at: float
    procs: dict[tuple[int, int], Entry]  # by (pid, start)
    machine: tuple[int, int]  # busy, idle clock ticks of all cores


def _label(proc: ProcInfo) -> str:
    """A short name of a process for the breakdown of `others`: its first three words, without directories."""
    if not proc.argv:
        return "[kernel]"
    return " ".join(os.path.basename(a) if a.startswith("/") else a for a in proc.argv[:3])[:60]


def _machine_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all cores since boot, from /proc/stat (guest time is inside user already)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal, idle + iowait


# --- the sender ----------------------------------------------------------------------------------------------


class _Connection(threading.Thread):
    """One keep-alive HTTP connection and the thread that sends on it, one POST at a time."""

    def __init__(self, sender: Sender) -> None:
        super().__init__(daemon=True, name="saga-sender")
        self.sender = sender
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.conn: http.client.HTTPConnection | None = None
        self.last_used = 0.0
        self.cpu_s = 0.0
        self.start()

    def run(self) -> None:
        job = self.jobs.get()
        while job is not None:
            cpu = time.thread_time()
            self.sender.post(self, job)
            self.cpu_s += time.thread_time() - cpu
            job = self.sender.next_job(self)
            if job is None:
                job = self.jobs.get()
        if self.conn is not None:
            self.conn.close()

    def request(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.conn is not None and time.monotonic() - self.last_used > KEEPALIVE_S:
            self.conn.close()
            self.conn = None
        while True:
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(self.sender.host, self.sender.port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if fresh:
                    raise
                continue  # the server closed a kept-alive connection before it read the request: once more
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                raise
            self.last_used = time.monotonic()
            if response.will_close:
                self.conn.close()
                self.conn = None
            return response.status, data


@dataclass
class Job:
    index: int
    scheduled: float
    headers: dict[str, str]


@dataclass
class Outcome:
    started: float
    ended: float
    order_id: str | None
    error: str | None


class Sender:
    """Open-loop POSTs of one body: a job goes to the idle connection used last (so under a steady rate few
    connections stay hot and none idles into gunicorn's keep-alive timeout), to a new one while fewer than
    `limit` exist, else waits in a backlog until one is free."""

    def __init__(self, url: str, body: dict, total: int, limit: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.body = json.dumps(body).encode()
        self.limit = limit
        self.outcomes: list[Outcome | None] = [None] * total
        self.connections: list[_Connection] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.backlogged = 0
        self._idle: list[_Connection] = []
        self._backlog: deque[Job] = deque()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)

    def submit(self, job: Job) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._idle:
                conn = self._idle.pop()
            elif len(self.connections) < self.limit:
                conn = _Connection(self)
                self.connections.append(conn)
            else:
                self._backlog.append(job)
                self.backlogged += 1
                return
        conn.jobs.put(job)

    def next_job(self, conn: _Connection) -> Job | None:
        with self._lock:
            self.in_flight -= 1
            if not self.in_flight:
                self._done.notify_all()
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(conn)
            return None

    def post(self, conn: _Connection, job: Job) -> None:
        started = time.monotonic()
        order_id = error = None
        try:
            status, data = conn.request(self.path, self.body, job.headers)
            if status == 201:
                order_id = json.loads(data)["orderId"]
            else:
                error = f"HTTP {status}: {data[:200].decode(errors='replace')}"
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.outcomes[job.index] = Outcome(started, time.monotonic(), order_id, error)

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._done.wait_for(lambda: not self.in_flight, timeout)

    @property
    def cpu_s(self) -> float:
        return sum(c.cpu_s for c in self.connections)

    def close(self) -> None:
        with self._lock:
            self._backlog.clear()
        for conn in self.connections:
            conn.jobs.put(None)


# --- Kafka: trades in, order-events out ----------------------------------------------------------------------


class TradeFeed(threading.Thread):
    """A trade on market-data every `interval` through one producer, as the feed would: every MARKET BUY fills
    at the next one. (tests.e2e.system.publish_trades makes a producer per call: 20 a second here.)"""

    def __init__(self, bootstrap: str, symbol: str, price: str, qty: str, interval: float = 0.05) -> None:
        from confluent_kafka import Producer

        from common.kafka import ADMIN, producer_config

        super().__init__(name="saga-trades")
        self.producer = Producer(producer_config(bootstrap, principal=ADMIN))  # plays the feed's part
        self.symbol, self.price, self.qty, self.interval = symbol, price, qty, interval
        self._halt = threading.Event()

    def run(self) -> None:
        from common import namespace
        from common.events import Envelope
        from common.topics import Topic

        seq = 0
        while not self._halt.wait(self.interval):
            seq += 1
            now_ms = int(time.time() * 1000)
            data = {
                "e": "trade",
                "E": now_ms,
                "s": self.symbol,
                "t": time.time_ns() // 1000 + seq,  # microseconds: above any id a feed has used
                "p": self.price,
                "q": self.qty,
                "T": now_ms,
                "m": False,
            }
            envelope = Envelope.new("trade", source="saga-bench", subject=self.symbol, data=data)
            self.producer.produce(
                namespace.topic(Topic.MARKET_DATA), key=self.symbol.encode(), value=envelope.to_json()
            )
            self.producer.poll(0)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(5)
        self.producer.flush(5)


class EventWatch:
    """Follows order-events from its current end and timestamps what each order went through."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer

        from common import namespace
        from common.kafka import ADMIN, client_config
        from common.topics import Topic

        self.consumer = Consumer(
            {
                **client_config(bootstrap, principal=ADMIN),
                "group.id": namespace.group(f"saga-bench-{uuid.uuid4().hex}"),
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        self.accepted: dict[str, float] = {}
        self.filled: dict[str, float] = {}
        self.other: dict[str, str] = {}
        self._stop = threading.Event()
        self.consumer.subscribe([namespace.topic(Topic.ORDER_EVENTS)])
        deadline = time.monotonic() + 30
        while not self.consumer.assignment() and time.monotonic() < deadline:
            self.consumer.poll(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True, name="saga-watch")
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # One message as soon as it comes, then what is already fetched: consume(n, timeout) alone would wait
            # for n messages or the timeout, adding up to the timeout to every time it measures.
            first = self.consumer.poll(0.1)
            if first is None:
                continue
            now = time.monotonic()
            for msg in [first, *self.consumer.consume(500, 0)]:
                if msg.error():
                    continue
                doc = json.loads(msg.value())
                order_id = doc["data"].get("order_id")
                if doc["type"] == "order.accepted":
                    self.accepted.setdefault(order_id, now)
                elif doc["type"] == "order.filled" and doc["data"].get("status") == "FILLED":
                    self.filled.setdefault(order_id, now)
                elif doc["type"] in ("order.rejected", "order.cancelled"):
                    self.other.setdefault(order_id, doc["type"])

    def resolved(self, order_id: str) -> bool:
        return order_id in self.filled or order_id in self.other

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()
        self.consumer.close()


# --- one rate ------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    system: object
    headers: list[dict[str, str]]
    watch: EventWatch
    meter: CpuMeter
    connections: int
    drain_s: float
    settle_s: float
    unresolved: set[str]  # orders of earlier steps not filled, rejected or cancelled yet


def settle(bench: Bench) -> int:
    """Wait (up to settle_s) until the orders of earlier steps are through; return how many are still not."""
    deadline = time.monotonic() + bench.settle_s
    while True:
        bench.unresolved = {o for o in bench.unresolved if not bench.watch.resolved(o)}
        if not bench.unresolved or time.monotonic() > deadline:
            return len(bench.unresolved)
        time.sleep(0.25)


def run_rate(bench: Bench, rate: int, seconds: float, *, early_stop: bool) -> dict:
    watch = bench.watch
    backlog_at_start = settle(bench)
    if backlog_at_start:
        progress(f"{backlog_at_start} orders of earlier steps are still not through: this step starts behind")
    total = max(1, int(rate * seconds))
    body = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}
    sender = Sender(f"{bench.system.urls['order_svc']}/api/orders", body, total, bench.connections)
    # Enough orders late (not NEW LATE_AFTER_S after their send time) that p99 of the time to NEW is over 1 s
    # whatever the rest do: the step cannot be sustained any more.
    late_limit = max(3, math.floor(total * (1 - 0.99)) + 1)
    stopped_early = False
    dispatch_cpu = time.thread_time()
    before = bench.meter.snapshot()
    t0 = time.monotonic() + 0.01
    sent = 0
    next_check = t0 + 1.0
    try:
        while sent < total:
            now = time.monotonic()
            due = min(total, math.floor((now - t0) * rate) + 1)
            while sent < due:
                sender.submit(Job(sent, t0 + sent / rate, bench.headers[sent % len(bench.headers)]))
                sent += 1
            if early_stop and now >= next_check:
                next_check = now + 0.25
                if _late(sender, watch, t0, rate, sent, now) >= late_limit:
                    stopped_early = True
                    break
            if sent < total:
                wake = min(t0 + sent / rate, next_check) if early_stop else t0 + sent / rate
                time.sleep(max(0.0, wake - time.monotonic()))
        dispatch_cpu = time.thread_time() - dispatch_cpu
        answered = sender.wait_idle(60)
        after = bench.meter.snapshot()
    finally:
        sender.close()
    cpu, machine, others = CpuMeter.delta(before, after)
    outcomes = [o for o in sender.outcomes[:sent] if o is not None]
    scheduled = {o.order_id: t0 + i / rate for i, o in enumerate(sender.outcomes[:sent]) if o and o.order_id}
    # Drain: wait until every order is filled, rejected or cancelled (or drain_s pass).
    deadline = time.monotonic() + bench.drain_s
    while time.monotonic() < deadline and not all(watch.resolved(o) for o in scheduled):
        time.sleep(0.2)
    bench.unresolved |= {o for o in scheduled if not watch.resolved(o)}

    new_ms = [(watch.accepted[o] - t) * 1000 for o, t in scheduled.items() if o in watch.accepted]
    filled_ms = [(watch.filled[o] - t) * 1000 for o, t in scheduled.items() if o in watch.filled]
    post_ms = [(o.ended - o.started) * 1000 for o in outcomes if o.order_id]
    lag_ms = [(o.started - (t0 + i / rate)) * 1000 for i, o in enumerate(sender.outcomes[:sent]) if o]
    errors = [o.error for o in outcomes if o.error]
    # The backlog held when the last second's orders were not slower to be accepted than the first second's by
    # more than half a second (a queue growing through the run).
    last_send = t0 + (sent - 1) / rate
    first = [(watch.accepted[o] - t) * 1000 for o, t in scheduled.items() if o in watch.accepted and t - t0 < 1]
    last = [(watch.accepted[o] - t) * 1000 for o, t in scheduled.items() if o in watch.accepted and last_send - t < 1]
    growth = statistics.median(last) - statistics.median(first) if first and last else None
    # Achieved: POSTs started per second from the first send time to the last start (one interval added, so a
    # schedule kept to the microsecond gives exactly the rate).
    starts = [o.started for o in outcomes]
    achieved = len(starts) / (max(starts) - t0 + 1 / rate) if starts else 0.0
    kept_schedule = achieved >= SUSTAINED_SEND_SHARE * rate
    new_p99 = percentile(new_ms, 99)
    why_not = []
    if stopped_early:
        why_not.append(f"stopped early: {late_limit}+ orders late over {LATE_AFTER_S:.0f}s")
    if errors:
        why_not.append(f"{len(errors)} POSTs failed")
    if not answered:
        why_not.append("POSTs still unanswered 60 s after the last send")
    if len(new_ms) < len(scheduled) or len(filled_ms) < len(scheduled):
        why_not.append(f"{len(scheduled) - len(filled_ms)} orders not FILLED within {bench.drain_s:.0f}s")
    if not kept_schedule:
        why_not.append(f"the sender started {achieved:.1f}/s, under {SUSTAINED_SEND_SHARE:.0%} of the rate")
    if new_p99 is None or new_p99 >= SUSTAINED_NEW_P99_MS:
        why_not.append(f"p99 time to NEW {new_p99} ms")
    if growth is not None and growth > SUSTAINED_GROWTH_MS:
        why_not.append(f"time to NEW grew {growth:.0f} ms from the first second to the last")
    sender_cpu = sender.cpu_s + dispatch_cpu
    return {
        "rate": rate,
        "orders": total,
        "sent": sent,
        "stopped_early": stopped_early,
        "backlog_at_start": backlog_at_start,
        "achieved_send_rate": round(achieved, 1),
        "kept_schedule": kept_schedule,
        # behind the schedule with a connection free: the sender itself (its CPU, the GIL) held the orders back
        "sender_bottleneck": not kept_schedule and not sender.backlogged,
        "send_lag_p50_ms": percentile(lag_ms, 50),
        "send_lag_p99_ms": percentile(lag_ms, 99),
        "connections": len(sender.connections),
        "max_in_flight": sender.max_in_flight,
        "all_connections_busy": sender.backlogged,
        "sender_cpu_s": round(sender_cpu, 3),
        "sender_cpu_ms_per_order": round(sender_cpu * 1000 / sent, 3) if sent else None,
        "post_errors": len(errors),
        "post_error_sample": sorted(set(errors))[:3],
        "post_p50_ms": percentile(post_ms, 50),
        "post_p95_ms": percentile(post_ms, 95),
        "post_p99_ms": percentile(post_ms, 99),
        "new_p50_ms": percentile(new_ms, 50),
        "new_p95_ms": percentile(new_ms, 95),
        "new_p99_ms": new_p99,
        "filled_p50_ms": percentile(filled_ms, 50),
        "filled_p95_ms": percentile(filled_ms, 95),
        "filled_p99_ms": percentile(filled_ms, 99),
        "new_first_second_median_ms": round(statistics.median(first), 1) if first else None,
        "new_last_second_median_ms": round(statistics.median(last), 1) if last else None,
        "accepted": len(new_ms),
        "filled": len(filled_ms),
        "rejected_or_expired": sum(1 for o in scheduled if o in watch.other),
        "cpu_s": cpu,
        "cpu_s_others_top": others,
        "machine": machine,
        "sustained": not why_not,
        "why_not": why_not,
    }


def _late(sender: Sender, watch: EventWatch, t0: float, rate: int, sent: int, now: float) -> int:
    """Orders (of the `sent` so far) whose send time is over LATE_AFTER_S ago and that are not NEW yet."""
    due = min(sent, max(0, math.floor((now - LATE_AFTER_S - t0) * rate) + 1))
    on_time = 0
    for outcome in sender.outcomes[:due]:
        if outcome is not None and outcome.order_id in watch.accepted:
            on_time += 1
    return due - on_time


# --- fixed rates or a search ---------------------------------------------------------------------------------


def search(
    bench: Bench, *, start: int, cap: int, resolution: int, seconds: float, early_stop: bool
) -> tuple[list[dict], int]:
    """Double from `start` while sustained (halve while not), then bisect down to `resolution` (finer near 0)."""
    results: list[dict] = []

    def sustained(rate: int) -> bool:
        results.append(step(bench, rate, seconds, early_stop=early_stop))
        return results[-1]["sustained"]

    lo, hi = 0, None
    rate = min(start, cap)
    if sustained(rate):
        lo = rate
        while lo < cap:
            rate = min(cap, lo * 2)
            if not sustained(rate):
                hi = rate
                break
            lo = rate
    else:
        hi = rate
        while hi > 1:
            rate = hi // 2
            if sustained(rate):
                lo = rate
                break
            hi = rate
    while hi is not None and hi - lo > min(resolution, max(1, hi // 8)):
        rate = (lo + hi) // 2
        if sustained(rate):
            lo = rate
        else:
            hi = rate
    return results, lo


def step(bench: Bench, rate: int, seconds: float, *, early_stop: bool) -> dict:
    progress(f"{rate} orders/s for {seconds:.0f}s...")
    result = run_rate(bench, rate, seconds, early_stop=early_stop)
    cpu = ", ".join(f"{g} {s}" for g, s in sorted(result["cpu_s"].items(), key=lambda kv: -kv[1]) if s >= 0.05)
    progress(
        f"{rate}/s: {'sustained' if result['sustained'] else 'NOT sustained (' + '; '.join(result['why_not']) + ')'}"
        f"; sent {result['achieved_send_rate']}/s, NEW p99 {result['new_p99_ms']} ms, FILLED p99"
        f" {result['filled_p99_ms']} ms, sender CPU {result['sender_cpu_s']} s; CPU s: {cpu};"
        f" idle {result['machine']['idle_fraction']}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="50,100,200", help="fixed rates, orders/s (ignored with --search)")
    parser.add_argument("--search", action="store_true", help="find the highest sustained rate")
    parser.add_argument("--seconds", type=float, default=None, help="per rate (default 30, 15 with --search)")
    parser.add_argument("--start", type=int, default=50, help="--search: first rate")
    parser.add_argument("--cap", type=int, default=400, help="--search: highest rate tried")
    parser.add_argument("--resolution", type=int, default=25, help="--search: stop bisecting at this step")
    parser.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end a step once it cannot be sustained any more (default: on with --search, off with --rates)",
    )
    parser.add_argument("--traders", type=int, default=30, help="at least; more when the orders need them")
    parser.add_argument("--connections", type=int, default=256, help="the sender's most keep-alive connections")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds for the last orders to fill")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds for a step's backlog to clear")
    parser.add_argument("--tracing", choices=["on", "off"], default="on")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (15.0 if args.search else 30.0)
    early_stop = args.early_stop if args.early_stop is not None else args.search
    rates = [int(r) for r in args.rates.split(",")]
    # Funds: every trader has 10 000 USDT, an order takes ~5. A search tries about 4x its cap in all.
    planned = seconds * (4 * args.cap if args.search else sum(rates))
    n_traders = max(args.traders, math.ceil(planned / ORDERS_PER_TRADER))

    interrupts = Interrupts()
    from tests.e2e.conftest import manage_all, namespaces

    # A namespace of the bench's own: its trades, orders, queues and instances never reach a running platform.
    # Made with signals held back (so it is either made and removed at the end, or left to the next sweep).
    with interrupts.deferred():
        ns = namespaces.create("bench")
        os.environ.update(ns.env)
    progress(f"namespace {ns.name}")
    try:
        results, baseline, n_traders = run(args, interrupts, manage_all, seconds, early_stop, rates, n_traders)
    finally:
        interrupts.stopping = True
        progress(f"removing namespace {ns.name}...")
        namespaces.remove(ns.name)
    report(args, results, baseline, n_traders, seconds, rates)


def run(args, interrupts, manage_all, seconds, early_stop, rates, n_traders):
    import tempfile

    from common.testing.auth import mint_access_token
    from tests.e2e.system import System, Trader

    bootstrap = f"127.0.0.1:{manage_all.infra.KAFKA_PORT}"
    log_dir = Path(tempfile.mkdtemp(prefix="saga-bench-"))
    env = {"TRACING_ENABLED": "true" if args.tracing == "on" else "false", "LOG_LEVEL": "WARNING"}
    system = System(log_dir, env=env)
    feed: TradeFeed | None = None
    watch: EventWatch | None = None
    try:
        progress(f"starting the platform (logs in {log_dir})...")
        start_platform(system, interrupts)
        progress("measuring the bare database commit rate...")
        baseline = baseline_commits_per_s()
        progress(f"registering {n_traders} traders...")
        traders = [Trader.register(system) for _ in range(n_traders)]
        for trader in traders:
            trader.wait_funded(timeout=120)
        # Tokens of the run's length (the login's last 15 minutes); the services verify them like any other.
        headers = [
            {
                "Authorization": f"Bearer {mint_access_token(t.user_id, lifetime=timedelta(hours=6))}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            for t in traders
        ]
        feed = TradeFeed(bootstrap, "BTCUSDT", "50000.00", "1.0")
        feed.start()
        time.sleep(2)
        watch = EventWatch(bootstrap)
        bench = Bench(
            system=system,
            headers=headers,
            watch=watch,
            meter=CpuMeter(system),
            connections=args.connections,
            drain_s=args.drain,
            settle_s=args.settle,
            unresolved=set(),
        )
        if args.search:
            results, found = search(
                bench,
                start=args.start,
                cap=args.cap,
                resolution=args.resolution,
                seconds=seconds,
                early_stop=early_stop,
            )
            progress(f"highest sustained rate: {found} orders/s")
        else:
            results = [step(bench, rate, seconds, early_stop=early_stop) for rate in rates]
    finally:
        interrupts.stopping = True
        try:
            if feed is not None:
                feed.stop()
        finally:
            try:
                if watch is not None:
                    watch.stop()
            finally:
                progress("stopping the platform...")
                stop_platform(system)
                progress("platform stopped")
    return results, baseline, n_traders


def report(args, results, baseline, n_traders, seconds, rates) -> None:
    sustained = [r["rate"] for r in results if r["sustained"]]
    best = max(sustained) if sustained else 0
    out = {
        "benchmark": "order saga latency",
        "mode": "search" if args.search else "rates",
        "tracing": args.tracing,
        "seconds_per_rate": seconds,
        "rates": results,
        "max_sustained_per_s": best,
        "baseline_db_commits_per_s": round(baseline),
        "events": sum(r["sent"] for r in results),
        "platform_per_s": best,
        "baseline_per_s": round(baseline),
        "ratio": round(best / baseline, 4),
        "sender": {
            "max_connections": args.connections,
            "max_cpu_s_per_s": round(
                max((r["sender_cpu_s"] / r["machine"]["window_s"] for r in results), default=0), 3
            ),
            "bottleneck_anywhere": any(r["sender_bottleneck"] for r in results),
        },
        "traders": n_traders,
    }
    if args.search:
        out["search"] = {
            "start": args.start,
            "cap": args.cap,
            "resolution": args.resolution,
            "steps": [r["rate"] for r in results],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
