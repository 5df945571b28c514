"""OpenTelemetry in every process: spans to Zipkin, the W3C trace context carried inside event envelopes.

Read from the environment here (every process kind reads it the same way, before or without settings):

- TRACING_ENABLED (default true, but false in a pytest process: a unit test run would flood Zipkin with
  one-off traces; processes that tests start are traced as usual): false installs no SDK and no
  instrumentation; nothing is exported and events carry no `traceparent`.
- ZIPKIN_ENDPOINT (default http://127.0.0.1:59411/api/v2/spans): where span batches are POSTed (Zipkin JSON v2).
- TRACING_SAMPLE_RATIO (default 0.1): the share of new traces kept (a request that arrives with a sampled
  `traceparent` is always kept); every other span follows its parent's
  decision (ParentBased(TraceIdRatioBased)), so a trace is kept or dropped whole across services.
- TRACING_DB_SPANS (default false): true instruments psycopg2 (a span per SQL statement: costly under load).
- TRACING_PROCESS_KIND (optional): web, worker, beat, consumer, feed...; guessed from the command line otherwise.
- ZIPKIN_TIMEOUT_S (default 3): how long one export may wait for Zipkin, in the exporter's own thread.
- The SDK's own OTEL_BSP_* variables size the batch span processor (bounded queue; here a 1 s export delay
  unless OTEL_BSP_SCHEDULE_DELAY says otherwise).

Spans are queued and exported in batches by a background thread: an unreachable Zipkin costs a dropped batch
and one log line a minute, never a failed or slower request. The consumer base opens a CONSUMER span per
event whose parent is the envelope's `traceparent`; the relay opens a PRODUCER span per relayed event; so
publish() inside a handler carries the handler's context on, and one trace follows a request through Kafka.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import environ
import requests
from django.conf import settings
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from common.events import Envelope

logger = logging.getLogger(__name__)

LOCAL_ZIPKIN_PORT = 59411
DEFAULT_ZIPKIN_ENDPOINT = f"http://127.0.0.1:{LOCAL_ZIPKIN_PORT}/api/v2/spans"
# A health probe every few seconds per instance would bury the traces worth reading.
EXCLUDED_URLS = "/healthz,/readyz"
# Beat ticks at most this far apart are housekeeping (the outbox sweep): they start no trace of their own.
QUIET_TICK_S = 60.0
# An export failure is reported at most this often per process, whatever the number of spans lost.
REPORT_EVERY_S = 60.0
# The share of new traces kept: enough to follow any flow in Zipkin, cheap at exchange rates (bench/saga.py).
DEFAULT_SAMPLE_RATIO = 0.1
MAX_LINKS = 128  # the SDK's default span limit: a batch span links to its first 128 events

_env = environ.Env()
_tracer = trace.get_tracer("common.tracing")  # a proxy until the SDK starts; cheap to keep at module level
_lock = threading.Lock()
_instrumented = False
_sdk_pid: int | None = None


# --- switches -------------------------------------------------------------------------------------------


def tracing_enabled(kind: str | None = None) -> bool:
    return _env.bool("TRACING_ENABLED", default=(kind or process_kind()) != "test")


def tracing_active() -> bool:
    """Whether this process exports spans now (the SDK started here, in this very process)."""
    return _sdk_pid == os.getpid()


def process_kind(argv: Sequence[str] | None = None) -> str:
    """web / worker / beat / consumer / feed / test / command, from TRACING_PROCESS_KIND or the command line."""
    if kind := os.environ.get("TRACING_PROCESS_KIND"):
        return kind
    argv = list(sys.argv if argv is None else argv)
    program = argv[0] if argv else ""
    args = set(argv[1:])
    if "gunicorn" in Path(program).name or "runserver" in args:
        return "web"
    if "celery" in program:
        return "beat" if "beat" in args else "worker" if "worker" in args else "celery"
    if "consume" in args:
        return "consumer"
    if "stream_market_data" in args:
        return "feed"
    if "pytest" in program:
        return "test"
    return "command"


# --- setting the process up ------------------------------------------------------------------------------


def configure_tracing() -> bool:
    """At Django start (CommonConfig.ready): instrument, and start the SDK unless this is a Celery worker.

    A prefork worker's parent only forks: its pool processes start their own SDK (celery_app.py), since an
    exporter thread and the pid in the resource do not survive a fork. Returns whether tracing is on.
    """
    kind = process_kind()
    if not tracing_enabled(kind):
        return False
    _instrument()
    if kind != "worker":
        _start_sdk(kind)
    return True


def start_tracing(*, kind: str) -> bool:
    """Instrument and start the SDK in this process now (a Celery pool process, beat); safe to call again."""
    if not tracing_enabled(kind):
        return False
    _instrument()
    _start_sdk(kind)
    return True


def flush_tracing(timeout_ms: int = 5000) -> bool:
    """Export every span ended so far (tests; a pool process before it exits)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    return bool(force_flush(timeout_ms)) if force_flush else True


def _instrument() -> None:
    global _instrumented
    with _lock:
        if _instrumented:
            return
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.propagators import TraceResponsePropagator, set_global_response_propagator
        from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor

        # Every response names its trace (`traceresponse: 00-<trace id>-<span id>-<flags>`): a client, the
        # gateway's access log or a test finds the trace of a request it made without sending a traceparent.
        set_global_response_propagator(TraceResponsePropagator())

        # Each takes its tracer from the global proxy, so instrumenting before the SDK starts (a worker's
        # parent, before the fork) is fine: the spans go to whichever provider this process ends up with.
        DjangoInstrumentor().instrument(excluded_urls=EXCLUDED_URLS)
        if _env.bool("TRACING_DB_SPANS", default=False):
            Psycopg2Instrumentor().instrument(skip_dep_check=True)
        CeleryInstrumentor().instrument()
        # No confluent-kafka instrumentation: the context travels inside the envelope (the relay sends its
        # bytes untouched), and the consumer and relay spans below are made from it; Kafka header spans
        # would double every hop with a second, unconnected parent.
        _instrumented = True


def _start_sdk(kind: str) -> None:
    global _sdk_pid
    with _lock:
        if _sdk_pid == os.getpid():
            return
        if isinstance(trace.get_tracer_provider(), TracerProvider):
            # Forked from a process that had started it: the batch processor restarts its thread after a
            # fork by itself, and the global provider cannot be replaced.
            _sdk_pid = os.getpid()
            return
        provider = build_tracer_provider(
            service=settings.SERVICE_NAME,
            kind=kind,
            endpoint=_env.str("ZIPKIN_ENDPOINT", default=DEFAULT_ZIPKIN_ENDPOINT),
            ratio=_env.float("TRACING_SAMPLE_RATIO", default=DEFAULT_SAMPLE_RATIO),
            timeout_s=_env.int("ZIPKIN_TIMEOUT_S", default=3),
            quiet_roots=quiet_root_names(getattr(settings, "CELERY_BEAT_SCHEDULE", {})),
        )
        trace.set_tracer_provider(provider)
        _sdk_pid = os.getpid()


def build_tracer_provider(
    *,
    service: str,
    kind: str,
    endpoint: str,
    ratio: float = 1.0,
    timeout_s: int = 3,
    quiet_roots: Iterable[str] = (),
) -> TracerProvider:
    """A provider exporting to Zipkin through a bounded batch queue; not installed globally here."""
    # Zipkin copies every resource attribute into every span's tags: only what tells processes apart
    # (not the SDK's telemetry.sdk.* defaults), plus whatever OTEL_RESOURCE_ATTRIBUTES adds.
    resource = (
        OTELResourceDetector()
        .detect()
        .merge(
            Resource(
                {
                    SERVICE_NAME: service,
                    SERVICE_INSTANCE_ID: f"{socket.gethostname()}:{os.getpid()}",
                    "platform.process.kind": kind,
                }
            )
        )
    )
    provider = TracerProvider(resource=resource, sampler=make_sampler(ratio, quiet_roots=quiet_roots))
    exporter = QuietExporter(ZipkinExporter(endpoint=endpoint, timeout=max(1, timeout_s)))
    schedule_delay_ms = _env.float("OTEL_BSP_SCHEDULE_DELAY", default=1000.0)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms))
    # The exporter reports non-2xx answers itself, once per batch: at most once a minute here.
    exporter_logger = logging.getLogger("opentelemetry.exporter.zipkin.json")
    if not any(isinstance(f, RateLimitFilter) for f in exporter_logger.filters):
        exporter_logger.addFilter(RateLimitFilter(REPORT_EVERY_S))
    return provider


def quiet_root_names(beat_schedule: dict[str, dict[str, Any]]) -> set[str]:
    """Span names of frequent beat ticks (Celery instrumentation's names): a tick alone is not worth a trace."""
    names = set()
    for entry in beat_schedule.values():
        schedule = entry.get("schedule")
        seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        if isinstance(seconds, int | float) and seconds <= QUIET_TICK_S:
            names |= {f"apply_async/{entry['task']}", f"run/{entry['task']}"}
    return names


def make_sampler(ratio: float, *, quiet_roots: Iterable[str] = ()) -> Sampler:
    return ParentBased(root=_RootSampler(ratio, quiet_roots))


class _RootSampler(Sampler):
    """Which new traces start: a ratio of them, but none from a lone query or a housekeeping tick.

    A database query with no parent (the relay's sweep, a consumer's inbox claim, a migration) is a CLIENT
    span with nothing around it; kept, it would make a one-span trace per query.
    """

    def __init__(self, ratio: float, quiet_roots: Iterable[str] = ()):
        self._ratio = TraceIdRatioBased(ratio)
        self._quiet = frozenset(quiet_roots)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        if kind is SpanKind.CLIENT or name in self._quiet:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"QuietRoots{{{self._ratio.get_description()}}}"


class QuietExporter(SpanExporter):
    """Wraps the Zipkin exporter: a failed export drops its batch and is reported once a minute, not per span."""

    def __init__(self, inner: SpanExporter, *, report_every_s: float = REPORT_EVERY_S):
        self._inner = inner
        self._report_every_s = report_every_s
        self._last_report = -report_every_s
        self._lost = 0

    def export(self, spans) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except requests.RequestException as exc:
            self._failed(len(spans), exc)
            return SpanExportResult.FAILURE
        if result is SpanExportResult.FAILURE:
            self._failed(len(spans), "rejected by the collector")
        return result

    def _failed(self, count: int, error: object) -> None:
        self._lost += count
        now = time.monotonic()
        if now - self._last_report >= self._report_every_s:
            self._last_report = now
            logger.warning(
                "span export failed; spans dropped",
                extra={"spans_lost": self._lost, "error": str(error)[:300], "zipkin": _endpoint_of(self._inner)},
            )
            self._lost = 0

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _endpoint_of(exporter: object) -> str:
    return str(getattr(exporter, "endpoint", ""))


class RateLimitFilter(logging.Filter):
    """Lets one record through per period; the others are dropped (not counted: the exporter logs counts)."""

    def __init__(self, period_s: float):
        super().__init__()
        self.period_s = period_s
        self._last = -period_s

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.period_s:
            return False
        self._last = now
        return True


# --- context in envelopes --------------------------------------------------------------------------------


def current_trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, to carry inside an event envelope."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def envelope_context(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The context an event was published in (an empty one, so a new trace, when it carries none)."""
    if not traceparent:
        return Context()
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return extract(carrier, context=Context())


def event_attributes(envelope: Envelope) -> dict[str, Any]:
    """What makes a span findable: the event's type and id, its correlation id and every `*_id` in its data."""
    attributes: dict[str, Any] = {"event.type": envelope.type, "event.id": envelope.id}
    if envelope.correlationid:
        attributes["correlation.id"] = envelope.correlationid
    for key, value in envelope.data.items():
        if key.endswith("_id") and isinstance(value, str | int) and not isinstance(value, bool):
            attributes[key] = value
    return attributes


def continued_span(traceparent: str | None, name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A span that continues a trace saved earlier (a stored `traceparent`), for work done later elsewhere.

    The fill engine fills an order long after the request that placed it, inside a market-data batch: this
    makes the fill, and what its events cause, part of the order's trace instead of the batch's.
    """
    if not tracing_active() or not traceparent:
        return nullcontext()
    span = _tracer.start_span(name, context=envelope_context(traceparent), kind=SpanKind.INTERNAL)
    if span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    return trace.use_span(span, end_on_exit=True)


# --- consumer spans ---------------------------------------------------------------------------------------


def consumer_span(
    envelope: Envelope, *, consumer: str, topic: str, partition: int, offset: int
) -> AbstractContextManager[Any]:
    """The span a handler runs in: a CONSUMER child of the span that published the event.

    Few attributes, since each costs on the consumer's hot path and in Zipkin's memory: the service is the
    span's own (service.name), the group is `<service>.<consumer>`, the message id is the event id.
    """
    if not tracing_active():
        return nullcontext()
    span = _tracer.start_span(
        f"handle {envelope.type}",
        context=envelope_context(envelope.traceparent, envelope.tracestate),
        kind=SpanKind.CONSUMER,
    )
    if span.is_recording():  # an unsampled event skips building attributes nobody will see
        span.set_attributes(
            {
                "consumer": consumer,
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": partition,
                "messaging.kafka.offset": offset,
                **event_attributes(envelope),
            }
        )
    return trace.use_span(span, end_on_exit=True)


def _sampled(traceparent: str | None) -> bool:
    """Whether a W3C traceparent (00-<trace>-<span>-<flags>) says its trace is kept, read without parsing."""
    if not traceparent or len(traceparent) < 55:
        return False
    try:
        return bool(int(traceparent[53:55], 16) & 0x01)
    except ValueError:
        return False


# event id -> traceparent of the span that handles it, for the events of the batch in hand that are traced.
_handling: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("handling", default=None)


@contextmanager
def handling_spans(
    envelopes: Sequence[Envelope],
    *,
    consumer: str,
    positions: dict[str, tuple[str, int, int]] | None = None,
) -> Iterator[dict[str, trace.Span]]:
    """CONSUMER spans for a batch: one per event whose trace is sampled, none for the rest.

    Each is a child of the span that published its event, so a sampled order stays one trace across services;
    what a handler publishes in answer to an event (publish_many's `cause`, or the ambient envelope) carries
    that span's context on. An unsampled event costs one string check: at the default sampling ratio most of
    a busy batch makes no span at all.
    """
    spans: dict[str, trace.Span] = {}
    if not tracing_active():
        yield spans
        return
    for envelope in envelopes:
        if envelope.id in spans or not _sampled(envelope.traceparent):
            continue
        span = _tracer.start_span(
            f"handle {envelope.type}",
            context=envelope_context(envelope.traceparent, envelope.tracestate),
            kind=SpanKind.CONSUMER,
        )
        if span.is_recording():
            attributes = {"consumer": consumer, "messaging.batch.message_count": len(envelopes)}
            if positions and (position := positions.get(envelope.id)):
                attributes["messaging.destination.name"] = position[0]
                attributes["messaging.destination.partition.id"] = position[1]
                attributes["messaging.kafka.offset"] = position[2]
            span.set_attributes({**attributes, **event_attributes(envelope)})
        spans[envelope.id] = span
    if not spans:
        yield spans
        return
    carriers = {}
    for event_id, span in spans.items():
        carrier: dict[str, str] = {}
        inject(carrier, context=trace.set_span_in_context(span))
        carriers[event_id] = carrier.get("traceparent", "")
    token = _handling.set(carriers)
    error: BaseException | None = None
    try:
        yield spans
    except BaseException as exc:
        error = exc
        raise
    finally:
        _handling.reset(token)
        for span in spans.values():
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, repr(error)[:300]))
            span.end()


def in_span(span: trace.Span | None) -> AbstractContextManager[Any]:
    """Make a handling span current (log lines then carry its ids), or do nothing for an untraced event."""
    return nullcontext() if span is None else trace.use_span(span, end_on_exit=False)


def trace_headers_for(cause: Envelope) -> dict[str, str]:
    """The trace context to publish an answer to `cause` in: its handling span's, else its own (kept or not)."""
    if not tracing_active():
        return {}
    handling = _handling.get()
    if handling and (traceparent := handling.get(cause.id)):
        return {"traceparent": traceparent}
    # Not sampled (or handled outside a batch): pass its context on, so every hop makes the same decision.
    headers = {}
    if cause.traceparent:
        headers["traceparent"] = cause.traceparent
        if cause.tracestate:
            headers["tracestate"] = cause.tracestate
    return headers


def child_traceparent(traceparent: str | None, name: str, **attributes: Any) -> str | None:
    """Continue a stored trace (an order's) for work done now: a finished span when sampled; returns its context.

    The fill engine fills many orders in one market-data batch; each fill's event joins its own order's trace.
    """
    if not tracing_active() or not _sampled(traceparent):
        return traceparent
    span = _tracer.start_span(name, context=envelope_context(traceparent), kind=SpanKind.INTERNAL)
    if span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    span.end()
    return carrier.get("traceparent", traceparent)


def batch_span(envelopes: list[Envelope], *, consumer: str) -> AbstractContextManager[Any]:
    """The span a batch handler runs in, linked to the span that published each traced event.

    A batch of untraced events (the market-data firehose: trades carry no context) gets no span, as a beat
    tick gets no trace: a one-span trace per poll would bury the rest. When every traced event of the batch
    belongs to one trace, the span is a child in it (Zipkin shows no links); otherwise it starts a new one.
    """
    if not tracing_active():
        return nullcontext()
    links = []
    for envelope in envelopes:
        if len(links) >= MAX_LINKS:
            break
        span_context = trace.get_current_span(envelope_context(envelope.traceparent)).get_span_context()
        if span_context.is_valid and span_context.trace_flags.sampled:
            links.append(Link(span_context, {"event.id": envelope.id}))
    if not links:
        return nullcontext()
    one_trace = len({link.context.trace_id for link in links}) == 1
    return _tracer.start_as_current_span(
        f"handle batch {consumer}",
        context=trace.set_span_in_context(trace.NonRecordingSpan(links[0].context)) if one_trace else Context(),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "consumer": consumer,
            "messaging.batch.message_count": len(envelopes),
            "event.types": sorted({e.type for e in envelopes}),
            "event.first_id": envelopes[0].id,
            "event.last_id": envelopes[-1].id,
        },
    )


# --- relay spans ------------------------------------------------------------------------------------------

_TRACEPARENT_KEY = b'"traceparent":"'
_TRACEPARENT_LEN = 55  # 00-<32 hex>-<16 hex>-<2 hex>


class RelaySpans:
    """PRODUCER spans of one relay run: one per relayed event that belongs to a sampled trace.

    Each starts when the row is handed to the producer and ends at Kafka's acknowledgement, as a child of
    the span that published the event (read from the envelope's bytes without parsing them: the relay
    moves thousands of rows a second). Rows of unsampled or untraced events cost one bytes.find().
    """

    def __init__(self) -> None:
        self._active = tracing_active()
        self._open: dict[int, trace.Span] = {}

    def start(self, row_id: int, *, topic: str, payload: bytes, headers: Sequence[Sequence[str]] | None) -> None:
        if not self._active:
            return
        at = payload.find(_TRACEPARENT_KEY)
        if at < 0:
            return
        start = at + len(_TRACEPARENT_KEY)
        traceparent = payload[start : start + _TRACEPARENT_LEN].decode(errors="replace")
        try:
            sampled = int(traceparent[-2:], 16) & 0x01
        except ValueError:
            return  # not a traceparent we can read; the consumer's extract will say the same
        if not sampled:  # the trace is not kept anyway
            return
        named = {h[0]: h[1] for h in headers or ()}
        event_type = named.get("ce_type", "(raw)")
        self._open[row_id] = _tracer.start_span(
            f"relay {event_type}",
            context=envelope_context(traceparent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.destination.name": topic,
                "event.type": event_type,
                "event.id": named.get("ce_id", ""),
                "outbox.row_id": row_id,
            },
        )

    def end(self, row_id: int, error: object = None, message: Any = None) -> None:
        span = self._open.pop(row_id, None)
        if span is None:
            return
        if message is not None and error is None:
            span.set_attribute("messaging.destination.partition.id", message.partition())
            span.set_attribute("messaging.kafka.offset", message.offset())
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, str(error)[:300]))
        span.end()

    def end_all(self, error: object) -> None:
        for row_id in list(self._open):
            self.end(row_id, error)
