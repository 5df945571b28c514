"""Pytest plugin shared by every suite: Kafka helpers against the real local broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def kafka_bootstrap() -> str:
    """The real broker the run started (manage_all.py test starts it; so does `infra up`)."""
    import os

    from common.settings import LOCAL_KAFKA_PORT

    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{LOCAL_KAFKA_PORT}")


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh single-use topic (3 partitions), deleted afterwards."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)
