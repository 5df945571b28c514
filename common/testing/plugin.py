"""Pytest plugin shared by every suite: the real local broker and single-use topics on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.testing.kafka import create_topics, delete_topics
from common.topics import dlq


@pytest.fixture
def kafka_bootstrap() -> str:
    """The real broker the run started (manage_all.py test starts it; so does `infra up`)."""
    from common.settings import LOCAL_KAFKA_PORT

    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{LOCAL_KAFKA_PORT}")


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh topic with 3 partitions and its dead-letter topic, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    create_topics(kafka_bootstrap, name, dlq(name))
    yield name
    delete_topics(kafka_bootstrap, name, dlq(name))
