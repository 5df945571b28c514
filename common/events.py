"""The event envelope (CloudEvents 1.0, structured JSON) and the registry of event types and their schemas.

Every message on every topic is an `Envelope`. Its `data` is validated against the schema registered for
its type when it is written (publish) and when it is read (consumers): an unregistered type or invalid
data raises. Contracts themselves are declared in common/contracts.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import fastjsonschema

SPECVERSION = "1.0"
# CloudEvents extension attributes (lowercase alphanumerics, as the spec requires).
EXTENSIONS = ("correlationid", "causationid", "traceparent", "tracestate")
REQUIRED = ("id", "source", "type", "specversion", "time", "subject", "datacontenttype", "data")


class EventError(Exception):
    """Base of everything the envelope refuses."""


class UnknownEventType(EventError):
    """No contract is registered for this type (a consumer skips it; a publisher must not send it)."""


class MalformedEvent(EventError):
    """Not a valid envelope, or data that does not match its type's schema (a consumer dead-letters it)."""


@dataclass(frozen=True)
class EventType:
    type: str
    version: int
    topic: str | None  # None: travels on any topic (contracts of tests and tools)
    schema: dict[str, Any]
    validator: Callable[[Any], None] = field(repr=False, compare=False)

    @property
    def dataschema(self) -> str:
        return f"urn:platform:event:{self.type}:v{self.version}"


_registry: dict[str, EventType] = {}


def register(type_: str, *, topic: str | None, version: int = 1, schema: dict[str, Any]) -> EventType:
    """Declare an event type: its topic, its version and the JSON schema of its data."""
    if type_ in _registry:
        raise ValueError(f"event type {type_!r} is registered twice")
    # Compiled once: validation runs for every event written and read, so it must cost microseconds.
    compiled = fastjsonschema.compile(schema)

    def validate(data: Any) -> None:
        try:
            compiled(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise MalformedEvent(f"{type_}: {exc.message}") from None

    event = EventType(type_, version, None if topic is None else str(topic), schema, validate)
    _registry[type_] = event
    return event


def event_type(type_: str) -> EventType:
    _load_contracts()
    try:
        return _registry[type_]
    except KeyError:
        raise UnknownEventType(f"no contract is registered for event type {type_!r}") from None


def registered_types() -> dict[str, EventType]:
    _load_contracts()
    return dict(_registry)


def _load_contracts() -> None:
    import common.contracts  # noqa: F401 - registering the contracts is the import's effect


def to_jsonable(value: Any) -> Any:
    """Decimals and ids become strings, times ISO 8601 UTC: the JSON our contracts speak."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError("naive datetime in event data; use timezone-aware UTC")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    time: str
    subject: str
    data: dict[str, Any]
    specversion: str = SPECVERSION
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @classmethod
    def new(
        cls,
        type_: str,
        *,
        source: str,
        subject: str,
        data: dict[str, Any],
        correlation_id: str | None = None,
        causation_id: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Envelope:
        """Build and validate a new event; raises UnknownEventType or MalformedEvent."""
        contract = event_type(type_)
        data = to_jsonable(data)
        contract.validator(data)
        event_id = str(uuid.uuid4())
        return cls(
            id=event_id,
            source=source,
            type=type_,
            time=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            subject=str(subject),
            data=data,
            dataschema=contract.dataschema,
            # A new causal chain starts with this event when nothing caused it.
            correlationid=correlation_id or event_id,
            causationid=causation_id,
            traceparent=traceparent,
            tracestate=tracestate,
        )

    @property
    def version(self) -> int:
        return event_type(self.type).version

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Envelope:
        """Parse and validate a received envelope.

        Raises MalformedEvent for anything that is not a valid envelope of a registered type with valid
        data, and UnknownEventType for a well-formed envelope of a type with no contract.
        """
        if raw is None:
            raise MalformedEvent("empty message (no value)")
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedEvent(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise MalformedEvent("envelope is not a JSON object")
        missing = [k for k in REQUIRED if k not in doc]
        if missing:
            raise MalformedEvent(f"envelope lacks {', '.join(missing)}")
        if doc["specversion"] != SPECVERSION:
            raise MalformedEvent(f"specversion {doc['specversion']!r} is not {SPECVERSION}")
        for key in ("id", "source", "type", "subject", "time"):
            if not isinstance(doc[key], str) or not doc[key]:
                raise MalformedEvent(f"envelope attribute {key} must be a non-empty string")
        if not isinstance(doc["data"], dict):
            raise MalformedEvent("envelope data must be a JSON object")
        contract = event_type(doc["type"])  # UnknownEventType propagates: the caller decides to skip
        contract.validator(doc["data"])
        known = {k: doc[k] for k in (*REQUIRED, "dataschema", *EXTENSIONS) if k in doc}
        return cls(**known)
