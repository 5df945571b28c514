#!/usr/bin/env python
"""Consumer throughput with inbox dedup against a bare confluent-kafka consume loop over the same messages.

Prints one JSON object: events, platform_per_s (ConsumerRunner: parse and validate each envelope, claim its id in
the inbox, run the handler, commit the transaction, then the offsets), baseline_per_s (a bare loop that consumes
the same topic and reads each value), ratio; baseline_parse_per_s (a bare loop that also parses each value's
JSON, the least any Python consumer of JSON events does) and ratio_to_parse. `--handler batch` (the default: the
set-based batch handler every consumer on the order path uses) or `events` (a handler per event).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from _django import fresh_topics, progress, register_bench_contract, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--handler", choices=["batch", "events"], default="batch")
    args = parser.parse_args()

    bootstrap = setup_django()
    register_bench_contract()
    from confluent_kafka import Consumer, Producer

    from common import namespace
    from common.consumers.base import ConsumerRunner, ConsumerSpec
    from common.consumers.models import InboxMessage
    from common.events import Envelope
    from common.kafka import client_config, producer_config
    from common.testing.kafka import delete_topics

    (topic,) = fresh_topics(bootstrap, "consume")
    progress(f"producing {args.events} events...")
    producer = Producer(producer_config(bootstrap))
    for seq in range(args.events):
        key = f"key-{seq % args.keys}"
        envelope = Envelope.new("bench.sample", source="bench", subject=key, data={"seq": seq, "pad": uuid.uuid4().hex})
        while True:
            try:
                producer.produce(namespace.topic(topic), key=key.encode(), value=envelope.to_json())
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0

    def bare_loop(read) -> float:
        bare = Consumer(
            {
                **client_config(bootstrap),
                "group.id": namespace.group(f"platform_common.bench-bare-{uuid.uuid4().hex}"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        bare.subscribe([namespace.topic(topic)])
        seen = 0
        started = None
        while seen < args.events:
            for msg in bare.consume(args.batch_size, 1.0):
                if msg.error() is None:
                    if started is None:
                        started = time.perf_counter()
                    read(msg.value())
                    seen += 1
        elapsed = time.perf_counter() - started
        bare.close()
        return elapsed

    progress("bare consume loop...")
    baseline_s = bare_loop(lambda value: value)
    progress("bare consume loop that parses each message's JSON...")
    parse_s = bare_loop(json.loads)

    progress("platform consumer (inbox dedup, one transaction per batch)...")
    handled = []
    name = f"bench-{uuid.uuid4().hex[:6]}"
    if args.handler == "batch":
        spec = ConsumerSpec(name=name, topics=[topic], batch_handler=handled.extend, types=frozenset({"bench.sample"}))
    else:
        spec = ConsumerSpec(name=name, topics=[topic], handlers={"bench.sample": lambda e: handled.append(1)})
    runner = ConsumerRunner(spec, batch_size=args.batch_size)
    stats = runner.run(max_messages=args.events, idle_exit_s=10)
    progress(f"batches: {stats.batches}")
    # Timed like the baseline: from the first batch in hand (joining the group is not throughput).
    platform_s = time.monotonic() - stats.first_batch_at
    assert len(handled) == args.events, f"handled {len(handled)} of {args.events}"
    InboxMessage.objects.filter(consumer=spec.name).delete()
    delete_topics(bootstrap, topic)

    platform = args.events / platform_s
    baseline = args.events / baseline_s
    baseline_parse = args.events / parse_s
    print(
        json.dumps(
            {
                "benchmark": "consumer with inbox",
                "handler": args.handler,
                "events": args.events,
                "batch_size": args.batch_size,
                "platform_per_s": round(platform),
                "baseline_per_s": round(baseline),
                "ratio": round(platform / baseline, 3),
                "baseline_parse_per_s": round(baseline_parse),
                "ratio_to_parse": round(platform / baseline_parse, 3),
                "platform_s": round(platform_s, 2),
                "baseline_s": round(baseline_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
