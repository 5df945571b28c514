"""publish(): the one way a service emits an event, inside the transaction that changes its state."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from common.correlation import current_cause
from common.events import Envelope, event_type
from common.logging import ids_of
from common.outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

RELAY_REQUEST_KEY = "outbox:relay-requested"
RELAY_REQUEST_TTL_S = 5


class OutboxError(RuntimeError):
    """publish() was used in a way that could lose or misroute an event."""


def publish(
    topic: str,
    type_: str,
    key: str,
    data: dict[str, Any],
    *,
    subject: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    using: str = "default",
) -> Envelope:
    """Write an event to the outbox in the current transaction; it reaches Kafka after the commit.

    Raises OutboxError outside transaction.atomic(), UnknownEventType for a type with no contract and
    MalformedEvent for data that does not match the contract.
    """
    _require_transaction(using)
    contract = event_type(type_)
    if contract.topic is not None and contract.topic != str(topic):
        raise OutboxError(f"{type_} belongs on {contract.topic}, not {topic}")
    cause = current_cause()
    from common.tracing import current_trace_headers

    trace = current_trace_headers()
    envelope = Envelope.new(
        type_,
        source=settings.SERVICE_NAME,
        subject=subject or key,
        data=data,
        correlation_id=cause.correlation_id,
        causation_id=cause.causation_id,
        traceparent=trace.get("traceparent"),
        tracestate=trace.get("tracestate"),
    )
    logger.info(
        "event published",
        extra={
            "event_id": envelope.id,
            "event_type": type_,
            "topic": str(topic),
            "key": str(key),
            "correlation_id": envelope.correlationid,
            "causation_id": envelope.causationid,
            **ids_of(envelope.data),
        },
    )
    _enqueue(
        using,
        event_id=envelope.id,
        topic=str(topic),
        key=str(key),
        event_type=type_,
        payload=envelope.to_json(),
        headers=[("ce_type", type_), ("ce_id", envelope.id), *headers],
    )
    return envelope


def enqueue_raw(
    *,
    topic: str,
    key: bytes | str | None,
    payload: bytes,
    headers: Sequence[tuple[str, str]],
    using: str = "default",
) -> str:
    """Put bytes that are not a new event on a topic through the outbox (dead letters and their replays)."""
    _require_transaction(using)
    row_id = f"raw-{uuid.uuid4()}"
    _enqueue(
        using,
        event_id=row_id,
        topic=topic,
        key=key.decode(errors="replace") if isinstance(key, bytes) else (key or ""),
        event_type="(raw)",
        payload=payload,
        headers=list(headers),
    )
    return row_id


def _require_transaction(using: str) -> None:
    if not transaction.get_connection(using).in_atomic_block:
        raise OutboxError(
            "publish() must be called inside transaction.atomic(), together with the state change it describes"
        )


def _enqueue(using: str, *, event_id: str, topic: str, key: str, event_type: str, payload: bytes, headers) -> None:
    OutboxMessage.objects.using(using).create(
        event_id=event_id,
        topic=topic,
        key=key,
        event_type=event_type,
        payload=payload,
        headers=[list(h) for h in headers],
    )
    connection = transaction.get_connection(using)
    # One relay request per transaction, however many events it publishes; a rolled-back savepoint
    # drops its callbacks, so the check is made against what will really run at commit.
    if not any(func is request_relay for _, func, _ in connection.run_on_commit):
        transaction.on_commit(request_relay, using=using, robust=True)


def request_relay() -> None:
    """After a commit: ask for a relay run unless one is already asked for (coalesced through the cache)."""
    from common.outbox.tasks import relay_outbox

    if cache.add(RELAY_REQUEST_KEY, "1", timeout=RELAY_REQUEST_TTL_S):
        relay_outbox.delay()
