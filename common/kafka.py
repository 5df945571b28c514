"""Kafka client configuration and topic administration, shared by the relay, consumers, health and infra."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from common import namespace
from common.topics import all_topics


def bootstrap_servers() -> str:
    from django.conf import settings

    return settings.KAFKA_BOOTSTRAP_SERVERS


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """An idempotent producer: acks=all, no reordering or duplicates on retry within a partition."""
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        # 1 ms, not 5: at our rates a commit brings a handful of events, and the relay hands the producer whole
        # batches (thousands of rows per pass) anyway, so waiting longer to fill a batch only adds latency to
        # the order path (POST to NEW crosses the relay twice).
        "linger.ms": 1,
        "compression.type": "lz4",
        **overrides,
    }


def ensure_topics(bootstrap: str, topics: list[str], *, partitions: int, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Waits for the broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=5).topics)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing], operation_timeout=30
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != exc.args[0].TOPIC_ALREADY_EXISTS:
                raise
            missing.remove(name)
    return missing


def delete_namespace_topics(bootstrap: str, ns: str, *, timeout: float = 30.0) -> list[str]:
    """Delete every topic of a run namespace (its platform topics and whatever its tests created)."""
    if not namespace.validate(ns):
        raise ValueError("the real platform's topics (empty namespace) are never deleted")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    doomed = sorted(t for t in admin.list_topics(timeout=timeout).topics if t.startswith(f"{ns}."))
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=timeout).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != exc.args[0].UNKNOWN_TOPIC_OR_PART:
                    raise
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create (or delete) a namespace's Kafka topics.")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--namespace", default=None, help="default: PLATFORM_NAMESPACE (empty: the real platform)")
    parser.add_argument("--delete", action="store_true", help="delete the namespace's topics instead")
    args = parser.parse_args(argv)
    ns = namespace.current() if args.namespace is None else namespace.validate(args.namespace)
    try:
        if args.delete:
            deleted = delete_namespace_topics(args.bootstrap, ns, timeout=args.timeout)
            print(f"topics of namespace {ns} deleted ({len(deleted)})")
            return 0
        topics = [namespace.topic(t, ns) for t in all_topics()]
        created = ensure_topics(args.bootstrap, topics, partitions=args.partitions, timeout=args.timeout)
    except (KafkaException, ValueError) as exc:
        print(f"could not manage topics on {args.bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(f"topics ready ({len(topics)}{f' in namespace {ns}' if ns else ''}; created {len(created)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
