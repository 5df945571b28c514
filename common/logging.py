"""JSON log lines with the service name, the current trace and span ids, and whatever context is bound."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Never mutated in place: log_context() sets a new dict, so the shared empty default is safe.
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields to every log line written inside the block (in this thread or task)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **_context.get(),
        }
        # The ids lead from a log line to its trace in Zipkin, and from a span back to its lines.
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            line["trace_id"] = format(span_context.trace_id, "032x")
            line["span_id"] = format(span_context.span_id, "016x")
            if not span_context.trace_flags.sampled:
                line["trace_sampled"] = False  # the ids still join the logs; Zipkin has no trace for them
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# The ids worth grepping for: they follow one order (or user, fill) through every service's logs.
TRACKED_IDS = ("order_id", "saga_id", "fill_id", "user_id", "portfolio_id", "transaction_id", "client_order_id")


def ids_of(data: dict[str, Any]) -> dict[str, Any]:
    """The tracked ids present in an event's data, for a log line's fields."""
    return {key: data[key] for key in TRACKED_IDS if key in data}
