#!/usr/bin/env python
"""Outbox relay throughput against a bare confluent-kafka producer sending the same messages from memory.

Prints one JSON object: events, platform_per_s (outbox rows -> Kafka through the relay, including the row
reads and the published marks), baseline_per_s (the same payloads, keys and headers produced from memory with the
same producer settings), ratio. Run with the project's venv while `manage_all.py infra up` runs.
"""

from __future__ import annotations

import argparse
import json
import time

from _django import fresh_topics, progress, register_bench_contract, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--payload-bytes", type=int, default=1_000)
    args = parser.parse_args()

    bootstrap = setup_django()
    register_bench_contract()
    from confluent_kafka import Producer
    from django.conf import settings
    from django.db import connection

    from common import namespace
    from common.events import Envelope
    from common.kafka import producer_config
    from common.outbox import relay
    from common.outbox.models import OutboxMessage
    from common.testing.kafka import delete_topics

    relay_topic, bare_topic = fresh_topics(bootstrap, "relay", "bare")
    pad = "x" * max(0, args.payload_bytes - 330)  # the envelope around it is about 330 bytes
    progress(f"writing {args.events} outbox rows...")
    OutboxMessage.objects.all().delete()
    rows = []
    for seq in range(args.events):
        key = f"key-{seq % args.keys}"
        envelope = Envelope.new("bench.sample", source="bench", subject=key, data={"seq": seq, "pad": pad})
        rows.append(
            OutboxMessage(
                event_id=envelope.id,
                topic=relay_topic,
                key=key,
                event_type="bench.sample",
                payload=envelope.to_json(),
                headers=[["ce_type", "bench.sample"], ["ce_id", envelope.id]],
            )
        )
    OutboxMessage.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_messages")
    payload_size = len(rows[0].payload)

    progress("relaying through the outbox...")
    started = time.perf_counter()
    sent = 0
    while True:
        result = relay.relay_pending()
        sent += result.sent
        if result.sent == 0:
            break
    platform_s = time.perf_counter() - started
    assert sent == args.events, f"relayed {sent} of {args.events}"

    progress("producing the same messages with a bare producer...")
    producer = Producer(producer_config(bootstrap, **{"message.timeout.ms": 30000}))
    messages = [(r.key.encode(), bytes(r.payload), [(h[0], h[1]) for h in r.headers]) for r in rows]
    started = time.perf_counter()
    for key, value, headers in messages:
        while True:
            try:
                producer.produce(namespace.topic(bare_topic), value=value, key=key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    baseline_s = time.perf_counter() - started

    OutboxMessage.objects.all().delete()
    delete_topics(bootstrap, relay_topic, bare_topic)
    platform = args.events / platform_s
    baseline = args.events / baseline_s
    print(
        json.dumps(
            {
                "benchmark": "outbox relay",
                "events": args.events,
                "keys": args.keys,
                "payload_bytes": payload_size,
                "batch_size": relay.BATCH_SIZE,
                "platform_per_s": round(platform),
                "baseline_per_s": round(baseline),
                "ratio": round(platform / baseline, 3),
                "platform_s": round(platform_s, 2),
                "baseline_s": round(baseline_s, 2),
                "producer": {
                    k: v
                    for k, v in producer_config(bootstrap).items()
                    if k in ("acks", "enable.idempotence", "linger.ms", "compression.type")
                },
                "kafka_bootstrap": settings.KAFKA_BOOTSTRAP_SERVERS,
            }
        )
    )


if __name__ == "__main__":
    main()
