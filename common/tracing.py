"""Trace context for events: the W3C headers of the span running now (empty until tracing is configured)."""

from __future__ import annotations


def current_trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, to carry inside an event envelope."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:
        return {}
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier
