"""publish() and publish_many(): the one way a service emits events, inside the transaction that changes its state."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from common.correlation import current_cause
from common.events import Envelope, event_type
from common.logging import ids_of
from common.outbox.models import OutboxMessage

if TYPE_CHECKING:
    from common.events import EventType

logger = logging.getLogger(__name__)


class OutboxError(RuntimeError):
    """publish() was used in a way that could lose or misroute an event."""


@dataclass(frozen=True)
class Outgoing:
    """One event for publish_many(): an outbox row once written.

    `cause` is the event this one answers (its correlation id, its id as causation id, and the trace of the
    span that handled it); without it the ambient cause of the running request or handler applies.
    `traceparent` overrides the trace context (work that continues a trace stored earlier: a fill).
    """

    topic: str
    type: str
    key: str
    data: dict[str, Any]
    subject: str | None = None
    cause: Envelope | None = None
    traceparent: str | None = None
    headers: Sequence[tuple[str, str]] = ()


def publish(
    topic: str,
    type_: str,
    key: str,
    data: dict[str, Any],
    *,
    subject: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    cause: Envelope | None = None,
    using: str = "default",
) -> Envelope:
    """Write one event to the outbox in the current transaction; it reaches Kafka after the commit.

    Raises OutboxError outside transaction.atomic(), UnknownEventType for a type with no contract and
    MalformedEvent for data that does not match the contract.
    """
    event = Outgoing(str(topic), type_, str(key), data, subject=subject, cause=cause, headers=headers)
    return publish_many([event], using=using)[0]


def publish_many(events: Sequence[Outgoing], *, using: str = "default") -> list[Envelope]:
    """Write every event with ONE multi-row INSERT in the current transaction; returns their envelopes in order.

    A consumer's batch handler publishes all the answers of a Kafka batch at once, so the statements per batch
    stay constant. Each event is validated against its contract like publish() does.
    """
    _require_transaction(using)
    if not events:
        return []
    from common.tracing import current_trace_headers, trace_headers_for

    ambient = current_cause()
    ambient_trace: dict[str, str] | None = None
    log_each = logger.isEnabledFor(logging.INFO)
    rows, envelopes = [], []
    for event in events:
        topic = str(event.topic)
        _check_topic(event_type(event.type), topic)
        cause = event.cause or ambient.envelope
        if cause is not None:
            correlation_id, causation_id = cause.correlationid or cause.id, cause.id
            trace = trace_headers_for(cause)
        else:
            correlation_id, causation_id = ambient.correlation_id, ambient.causation_id
            if ambient_trace is None:
                ambient_trace = current_trace_headers()
            trace = ambient_trace
        traceparent = event.traceparent or trace.get("traceparent")
        envelope = Envelope.new(
            event.type,
            source=settings.SERVICE_NAME,
            subject=event.subject or event.key,
            data=event.data,
            correlation_id=correlation_id,
            causation_id=causation_id,
            traceparent=traceparent,
            tracestate=None if event.traceparent else trace.get("tracestate"),
        )
        envelopes.append(envelope)
        if log_each:
            logger.info(
                "event published",
                extra={
                    "event_id": envelope.id,
                    "event_type": event.type,
                    "topic": topic,
                    "key": str(event.key),
                    "correlation_id": envelope.correlationid,
                    "causation_id": envelope.causationid,
                    **ids_of(envelope.data),
                },
            )
        rows.append(
            OutboxMessage(
                event_id=envelope.id,
                topic=topic,
                key=str(event.key),
                event_type=event.type,
                payload=envelope.to_json(),
                headers=[["ce_type", event.type], ["ce_id", envelope.id], *[list(h) for h in event.headers]],
            )
        )
    _insert(using, rows)
    return envelopes


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
    row = OutboxMessage(
        event_id=row_id,
        topic=topic,
        key=key.decode(errors="replace") if isinstance(key, bytes) else (key or ""),
        event_type="(raw)",
        payload=payload,
        headers=[list(h) for h in headers],
    )
    _insert(using, [row])
    return row_id


def _check_topic(contract: EventType, topic: str) -> None:
    if contract.topic is not None and contract.topic != topic:
        raise OutboxError(f"{contract.type} belongs on {contract.topic}, not {topic}")


def _require_transaction(using: str) -> None:
    if not transaction.get_connection(using).in_atomic_block:
        raise OutboxError(
            "publish() must be called inside transaction.atomic(), together with the state change it describes"
        )


def _insert(using: str, rows: list[OutboxMessage]) -> None:
    # One INSERT for all rows. The relay is woken at commit by the table's NOTIFY trigger (and swept by beat),
    # so nothing is scheduled per transaction here.
    OutboxMessage.objects.using(using).bulk_create(rows)
