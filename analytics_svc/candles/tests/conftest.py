"""Fixtures of the candles tests: the golden Binance files, the real feed command and the real consumer."""

from __future__ import annotations

import csv
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from candles.handlers import candles_spec
from common.consumers.base import ConsumerRunner
from common.testing.processes import Proc, run_database_url

REPO = Path(__file__).resolve().parents[3]
SERVICE_DIR = REPO / "analytics_svc"
DATA = REPO / ".." / "shared" / "data"  # shared with the project, never copied into the repository
GOLDEN_TRADES = DATA / "binance_XRPETH_trades_20191011.csv"
GOLDEN_SYMBOL = "XRPETH"
GOLDEN_TRADE_COUNT = 12_477
GOLDEN_LAST_ID = 13_532_283


@dataclass(frozen=True)
class Kline:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def read_klines(name: str) -> list[Kline]:
    """One of Binance's own candle files (open_time_ms, open, high, low, close, volume)."""
    with (DATA / name).open(newline="") as f:
        return [
            Kline(int(r["open_time_ms"]), *(Decimal(r[k]) for k in ("open", "high", "low", "close", "volume")))
            for r in csv.DictReader(f)
        ]


def read_trades() -> list[dict[str, str]]:
    with GOLDEN_TRADES.open(newline="") as f:
        return list(csv.DictReader(f))


def rollup(children: list[Kline], interval_ms: int) -> list[Kline]:
    """Candles of a longer interval from shorter ones: first open, last close, max, min, sum."""
    buckets: dict[int, list[Kline]] = {}
    for k in children:
        buckets.setdefault(k.open_time - k.open_time % interval_ms, []).append(k)
    return [
        Kline(
            start,
            ks[0].open,
            max(k.high for k in ks),
            min(k.low for k in ks),
            ks[-1].close,
            sum((k.volume for k in ks), Decimal(0)),
        )
        for start, ks in sorted(buckets.items())
    ]


@pytest.fixture
def replay(kafka_bootstrap: str, kafka_topic: str) -> Callable[..., None]:
    """Run the real feed command: replay a CSV of trades into the test's fresh topic."""

    def run(path: Path = GOLDEN_TRADES, *extra: str) -> None:
        call_command(
            "stream_market_data", "--source", "replay", str(path), "--topic", kafka_topic,
            "--bootstrap", kafka_bootstrap, *extra,
        )  # fmt: skip

    return run


@pytest.fixture
def consumer_name() -> str:
    # A group of the test's own, so nothing else running on the broker shares its offsets.
    return f"candles-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def consume(kafka_topic: str, consumer_name: str) -> Callable[..., ConsumerRunner]:
    """Run the candles consumer in-process against the fresh topic until `expected` messages arrived."""

    def run(expected: int, *, batch_size: int = 500) -> ConsumerRunner:
        runner = ConsumerRunner(candles_spec(topic=kafka_topic, name=consumer_name), batch_size=batch_size)
        runner.run(max_messages=expected, idle_exit_s=15)
        return runner

    return run


@pytest.fixture
def spawn_consumer(tmp_path: Path, kafka_topic: str, consumer_name: str) -> Iterator[Callable[..., Proc]]:
    """Start the real `manage.py consume` process on the test database and topic; killed at the end."""
    started: list[Proc] = []

    def start(*args: str) -> Proc:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "analytics_svc.settings",
            "DATABASE_URL": run_database_url(),
            "MARKET_DATA_TOPIC": kafka_topic,
            "CANDLES_CONSUMER_NAME": consumer_name,
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [sys.executable, "manage.py", "consume", consumer_name, *args]
        proc = Proc(cmd, tmp_path / f"consume-{len(started)}.log", env, cwd=SERVICE_DIR)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
