"""Benchmark: 1,000,000 simulated trades through the candles consumer vs a bare confluent-kafka loop; prints JSON.

Run from the repository root with the infrastructure up (`python3 manage_all.py infra up`):

    .venv/bin/python bench/ohlcv.py [--events 1000000] [--batch-size 2000]

It runs in a namespace of its own (topics, groups, an analytics database of its own, all removed at the end),
so a platform running beside it never sees its trades.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analytics_svc"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_svc.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # the JSON figures are the output

from _django import bench_namespace  # noqa: E402

if __name__ == "__main__":
    bench_namespace()  # before Django reads its settings: the bench's own analytics database, topics, groups

import django  # noqa: E402

django.setup()

from candles.feed.publisher import TradePublisher, stream  # noqa: E402
from candles.feed.sources import simulate  # noqa: E402
from candles.handlers import candles_spec  # noqa: E402
from candles.models import CANDLE_MODELS, SymbolCursor  # noqa: E402
from confluent_kafka import Consumer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from common import namespace  # noqa: E402
from common.consumers.base import ConsumerRunner  # noqa: E402
from common.kafka import client_config  # noqa: E402
from common.testing.kafka import create_topics, delete_topics  # noqa: E402

SYMBOLS = ["BENCHBTC", "BENCHETH", "BENCHXRP", "BENCHBNB"]


def baseline(bootstrap: str, topic: str, events: int) -> float:
    """A bare consume loop over the same topic: poll batches, touch each value, no parsing, no database."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": namespace.group(f"platform_common.bench-bare-{uuid.uuid4().hex[:8]}"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([namespace.topic(topic)])
    seen, size, started = 0, 0, None
    try:
        while seen < events:
            batch = consumer.consume(2000, 1.0)
            if batch and started is None:
                started = time.perf_counter()
            for msg in batch:
                if msg.error() is None:
                    size += len(msg.value())
                    seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        consumer.close()


def platform(topic: str, events: int, batch_size: int) -> tuple[float, dict]:
    """The real candles consumer (ConsumerRunner + trades_apply), from its first batch to the last commit."""
    spec = candles_spec(topic=topic, name=f"bench-{uuid.uuid4().hex[:8]}")
    first: list[float] = []
    handler = spec.batch_handler

    def timed(envelopes):
        if not first:
            first.append(time.perf_counter())
        handler(envelopes)

    spec.batch_handler = timed
    runner = ConsumerRunner(spec, batch_size=batch_size, poll_timeout=1.0)
    runner.run(max_messages=events, idle_exit_s=30)
    elapsed = time.perf_counter() - first[0]
    return runner.stats.handled / elapsed, runner.stats.__dict__


def cleanup() -> None:
    for model in CANDLE_MODELS.values():
        model.objects.filter(symbol__in=SYMBOLS).delete()
    SymbolCursor.objects.filter(symbol__in=SYMBOLS).delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    call_command("migrate", verbosity=0)  # the namespace's own database: a fresh one
    topic = f"bench-ohlcv-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, topic, partitions=len(SYMBOLS))
    cleanup()
    try:
        started = time.perf_counter()
        trades = simulate(SYMBOLS, seed=1, rate=50.0, start_ms=1_700_000_000_000)
        stream(trades, TradePublisher(bootstrap=bootstrap, topic=topic), count=args.events)
        produce_s = time.perf_counter() - started
        baseline_per_s = baseline(bootstrap, topic, args.events)
        platform_per_s, stats = platform(topic, args.events, args.batch_size)
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(trades_applied) FROM candle_symbol_cursors WHERE symbol = ANY(%s)", [SYMBOLS])
            applied = int(cursor.fetchone()[0] or 0)
        minutes = CANDLE_MODELS["1m"].objects.filter(symbol__in=SYMBOLS).count()
    finally:
        cleanup()
        delete_topics(bootstrap, topic)
    print(
        json.dumps(
            {
                "events": args.events,
                "platform_per_s": round(platform_per_s),
                "baseline_per_s": round(baseline_per_s),
                "ratio": round(platform_per_s / baseline_per_s, 4),
                "batch_size": args.batch_size,
                "applied": applied,
                "candles_1m": minutes,
                "consumer_stats": {k: v for k, v in stats.items() if isinstance(v, int)},
                "produce_per_s": round(args.events / produce_s),
                "target": {"platform_per_s": 50_000, "ratio": 0.25},
            }
        )
    )
    return 0 if applied == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
