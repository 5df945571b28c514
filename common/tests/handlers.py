"""Contracts and handlers of the test-only project: they record effects the tests count."""

from __future__ import annotations

import os
from collections import Counter

from common.consumers.base import ConsumerSpec
from common.contracts import obj
from common.events import Envelope, register
from common.tests.models import Effect

register("test.pinged", topic=None, schema=obj({"seq": {"type": "integer"}}))
register("test.exploded", topic=None, schema=obj({"seq": {"type": "integer"}}))
register("test.flaky", topic=None, schema=obj({"seq": {"type": "integer"}, "fail_times": {"type": "integer"}}))

attempts: Counter[str] = Counter()


def handle_pinged(envelope: Envelope) -> None:
    Effect.objects.create(event_id=envelope.id, key=envelope.subject, seq=envelope.data["seq"])


def handle_exploded(envelope: Envelope) -> None:
    raise RuntimeError(f"cannot handle #{envelope.data['seq']}")


def handle_flaky(envelope: Envelope) -> None:
    attempts[envelope.id] += 1
    if attempts[envelope.id] <= envelope.data["fail_times"]:
        raise RuntimeError(f"flaky failure {attempts[envelope.id]}")
    handle_pinged(envelope)


HANDLERS = {"test.pinged": handle_pinged, "test.exploded": handle_exploded, "test.flaky": handle_flaky}


def effects_spec(topic: str, **options: object) -> ConsumerSpec:
    return ConsumerSpec(name="effects", topics=[topic], handlers=HANDLERS, **options)


# What `manage.py consume effects` runs in subprocess tests: the topic comes from the environment.
CONSUMERS = [effects_spec(os.environ.get("TEST_CONSUMER_TOPIC", "test-unset"))]
