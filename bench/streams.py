"""Benchmark: trades published to market-data at a fixed rate, delivered by the streams server to N websocket clients
of `<symbol>@trade`, against a bare confluent-kafka consumer reading the same messages; prints JSON.

Run from the repository root with the infrastructure up (`python3 manage_all.py infra up`):

    .venv/bin/python bench/streams.py [--clients 50] [--rate 200] [--seconds 20]

The server is the real `manage.py serve_streams` process (its own group, the latest offset, analytics_svc's
principal); the clients, the publisher and the baseline consumer run in this process. A trade's latency is from the
moment it is handed to the producer to the moment a client (or the bare consumer) has it parsed, both clocks this
process's. It runs in a namespace of its own (topics, an analytics database, removed at the end) and stops the server
it starts, on SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
SERVICE_DIR = ROOT / "analytics_svc"
sys.path.insert(0, str(SERVICE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_svc.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # the JSON figures are the output

from _django import bench_namespace, progress  # noqa: E402

if __name__ == "__main__":
    bench_namespace()  # before Django reads its settings: the bench's own analytics database and topics

import django  # noqa: E402

django.setup()

from candles.models import SymbolCursor  # noqa: E402
from candles.trades import Trade  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from common import namespace  # noqa: E402
from common.events import Envelope  # noqa: E402
from common.kafka import client_config, producer_config  # noqa: E402

SYMBOL = "BENCHUSDT"


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 3)


class Server:
    """`manage.py serve_streams` on a free port, unregistered; stopped (SIGTERM, then SIGKILL) by stop()."""

    def __init__(self, log: Path):
        env = {**os.environ, "DISCOVERY_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "manage.py", "serve_streams", "--bind", "127.0.0.1:0"],
                cwd=SERVICE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.address = self._wait_address()
        self._wait_ready()

    def _wait_address(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("streams listening on "):
                    return line.rsplit(" ", 1)[1]
            if self.popen.poll() is not None:
                raise RuntimeError(f"serve_streams exited: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("serve_streams did not start within 60 s")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urlopen(f"http://{self.address}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the streams server's reader got no partitions within 60 s")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(15)


def bare_reader(topic: str, sent: dict[int, float], received: dict[int, float], ready: threading.Event, stop) -> None:
    """The baseline: a bare consumer of the same topic from the latest offset, parsing each value's JSON."""
    consumer = Consumer(
        {
            **client_config(),
            "group.id": namespace.group(f"analytics_svc.bench-bare-{uuid.uuid4().hex[:8]}"),
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    physical = namespace.topic(topic)
    partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
    starts = [TopicPartition(physical, p) for p in partitions]
    for tp in starts:  # from the end now, as the streams server's reader starts
        tp.offset = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
    consumer.assign(starts)
    ready.set()
    try:
        while not stop.is_set():
            first = consumer.poll(0.2)  # as the streams server's reader: one waited for, then what is fetched
            if first is None:
                continue
            for msg in [first, *consumer.consume(499, 0)]:
                if msg.error() is None:
                    trade_id = json.loads(msg.value())["data"]["t"]
                    received[trade_id] = time.perf_counter()
    finally:
        consumer.close()


def publish(topic: str, rate: float, seconds: float, sent: dict[int, float]) -> None:
    """`rate` trades a second for `seconds`, each stamped with the moment it is handed to the producer."""
    producer = Producer(producer_config(settings.KAFKA_BOOTSTRAP_SERVERS))
    started = time.perf_counter()
    total = int(rate * seconds)
    for i in range(1, total + 1):
        due = started + i / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        trade = Trade(SYMBOL, i, "100.5", "0.01", int(time.time() * 1000), i % 2 == 0)
        value = Envelope.new("trade", source="analytics_svc", subject=SYMBOL, data=trade.to_data()).to_json()
        sent[i] = time.perf_counter()
        producer.produce(namespace.topic(topic), key=SYMBOL.encode(), value=value)
        producer.poll(0)
    assert producer.flush(30) == 0, "trades undelivered"


async def client(address: str, sent: dict[int, float], latencies: list[float], counts: list[int], done) -> int | None:
    """One websocket client of the trade stream; returns the close code if the server disconnected it."""
    async with connect(f"ws://{address}/ws/{SYMBOL.lower()}@trade", max_queue=None) as ws:
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        await ws.recv()  # answered: subscribed
        counts.append(0)
        slot = len(counts) - 1
        while not done.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - disconnected: reported with its close code
                return ws.close_code
            now = time.perf_counter()
            trade_id = json.loads(message)["t"]
            if trade_id in sent:
                latencies.append(now - sent[trade_id])
            counts[slot] += 1
    return None


async def run(args: argparse.Namespace, server: Server) -> dict:
    topic = settings.MARKET_DATA_TOPIC
    sent: dict[int, float] = {}
    bare: dict[int, float] = {}
    latencies: list[float] = []
    counts: list[int] = []
    done = asyncio.Event()
    stop_bare, bare_ready = threading.Event(), threading.Event()
    reader = threading.Thread(target=bare_reader, args=(topic, sent, bare, bare_ready, stop_bare), daemon=True)
    reader.start()
    clients = [
        asyncio.ensure_future(client(server.address, sent, latencies, counts, done)) for _ in range(args.clients)
    ]
    while len(counts) < args.clients:
        if any(c.done() for c in clients):
            raise RuntimeError("a client could not connect")
        await asyncio.sleep(0.05)
    await asyncio.to_thread(bare_ready.wait, 60)
    progress(f"{args.clients} clients subscribed; publishing {args.rate}/s for {args.seconds}s...")
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    await asyncio.to_thread(publish, topic, args.rate, args.seconds, sent)
    total = len(sent)
    deadline = time.perf_counter() + 30
    while (sum(counts) < total * args.clients or len(bare) < total) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    done.set()
    codes = await asyncio.gather(*clients)
    stop_bare.set()
    reader.join(10)
    baseline = [bare[i] - sent[i] for i in bare if i in sent]
    return {
        "benchmark": "websocket streams",
        "clients": args.clients,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "published": total,
        "delivered": sum(counts),
        "delivered_min_per_client": min(counts) if counts else 0,
        "delivered_msgs_per_s": round(sum(counts) / elapsed),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "latency_max_ms": percentile(latencies, 100),
        "baseline_received": len(baseline),
        "baseline_p50_ms": percentile(baseline, 50),
        "baseline_p99_ms": percentile(baseline, 99),
        "disconnected": sum(1 for c in codes if c is not None),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_per_1000_msgs_ms": round(cpu / max(sum(counts), 1) * 1_000_000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0, help="trades a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)  # the namespace's own analytics database: a fresh one
    SymbolCursor.objects.create(symbol=SYMBOL, last_trade_id=0, last_price=100, last_trade_time=timezone.now())
    log = Path(settings.BASE_DIR).parent / ".run" / f"bench-streams-{os.getpid()}.log"
    server = Server(log)
    try:
        result = asyncio.run(run(args, server))
    finally:
        server.stop()
    log.unlink(missing_ok=True)
    print(json.dumps(result))
    complete = result["delivered"] == result["published"] * args.clients
    return 0 if complete and result["disconnected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
