"""Tracing against the real Zipkin, Kafka and PostgreSQL: one trace from a request through the outbox to consumers."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from common import tracing
from common.consumers.base import ConsumerRunner, ConsumerSpec
from common.events import Envelope
from common.logging import JsonFormatter
from common.outbox import relay
from common.outbox.services import RELAY_REQUEST_KEY, publish
from common.testing.http import http
from common.testing.kafka import produce
from common.tests.handlers import effects_spec
from common.tests.models import Effect

pytestmark = pytest.mark.django_db(transaction=True)

ZIPKIN = os.environ.get("ZIPKIN_ENDPOINT", tracing.DEFAULT_ZIPKIN_ENDPOINT).removesuffix("/api/v2/spans")
tracer = trace.get_tracer("common.tests.test_tracing")
logger = logging.getLogger("common.tests.tracing")


@pytest.fixture(scope="session")
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this test process (off by default under pytest), every span ended also kept in memory.

    Zipkin stores no links, so those are asserted on the spans in memory. The SDK stays on for the rest of
    the session (a global provider cannot be taken back): later tests merely export spans too.
    """
    previous = os.environ.get("TRACING_ENABLED")
    os.environ["TRACING_ENABLED"] = "true"
    tracing.start_tracing(kind="test")
    memory = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    if previous is None:
        del os.environ["TRACING_ENABLED"]
    else:
        os.environ["TRACING_ENABLED"] = previous


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """JSON log lines written by the test logger, formatted as every service formats them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(service="platform_common"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)


@pytest.fixture
def relay_requests() -> Iterator[None]:
    """After-commit relay requests go to the real broker (the test project's Celery app), for this test only."""
    from celery import current_app

    previous = current_app._get_current_object()
    from common.tests.celery_app import app

    app.set_current()
    cache.delete(RELAY_REQUEST_KEY)  # so the next commit asks for a relay run, whatever earlier tests asked for
    yield
    previous.set_current()


def _zipkin_trace(trace_id: str, *, until: Callable[[list[dict]], bool], timeout: float = 15.0) -> list[dict]:
    """The trace as Zipkin stores it, once `until` holds for its spans (ingestion is asynchronous)."""
    tracing.flush_tracing()
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        result = http("GET", f"{ZIPKIN}/api/v2/trace/{trace_id}")
        found = result.json() if result.status == 200 else []
        if until(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"Zipkin trace {trace_id} never satisfied the condition; it holds {found}")


def _named(spans: list[dict], name: str) -> list[dict]:
    return [s for s in spans if s.get("name") == name.lower()]  # Zipkin stores names in lower case


def _hex(span_context, attr: str) -> str:
    return format(getattr(span_context, attr), "032x" if attr == "trace_id" else "016x")


def _publish_in_request(topic: str, *, seq: int = 1) -> tuple[Envelope, trace.SpanContext]:
    with tracer.start_as_current_span("POST /api/orders/", kind=SpanKind.SERVER) as request, transaction.atomic():
        envelope = publish(topic, "test.pinged", f"k{seq}", {"seq": seq})
    return envelope, request.get_span_context()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- one trace through the outbox and Kafka ------------------------------------------------------------------


def test_the_consumer_span_is_a_child_of_the_span_that_published_the_event(kafka_topic, spans):
    envelope, request = _publish_in_request(kafka_topic)
    relay.relay_pending()
    ConsumerRunner(effects_spec(kafka_topic)).run(max_messages=1, idle_exit_s=5)

    trace_id, request_id = _hex(request, "trace_id"), _hex(request, "span_id")
    stored = _zipkin_trace(trace_id, until=lambda s: _named(s, "handle test.pinged") and _named(s, "relay test.pinged"))

    assert envelope.traceparent.startswith(f"00-{trace_id}-{request_id}-")
    (handled,) = _named(stored, "handle test.pinged")
    assert handled["parentId"] == request_id
    assert handled["kind"] == "CONSUMER"
    assert handled["localEndpoint"]["serviceName"] == "platform_common"
    assert handled["tags"]["event.type"] == "test.pinged"
    assert handled["tags"]["event.id"] == envelope.id
    assert handled["tags"]["service.name"] == "platform_common"
    assert handled["tags"]["messaging.destination.name"] == kafka_topic
    assert handled["tags"]["consumer"] == "effects"
    (relayed,) = _named(stored, "relay test.pinged")
    assert relayed["parentId"] == request_id
    assert relayed["kind"] == "PRODUCER"
    assert relayed["tags"]["event.id"] == envelope.id
    assert relayed["tags"]["messaging.destination.name"] == kafka_topic
    assert Effect.objects.get().event_id == envelope.id


def test_what_a_handler_publishes_continues_the_trace_and_its_log_lines_carry_the_ids(kafka_topic, spans, json_lines):
    def handle(envelope: Envelope) -> None:
        logger.info("handling", extra={"seq": envelope.data["seq"]})
        if envelope.data["seq"] == 1:
            publish(kafka_topic, "test.pinged", envelope.subject, {"seq": 2, "order_id": "o-42"})

    spec = ConsumerSpec(name=f"chain-{uuid.uuid4().hex[:8]}", topics=[kafka_topic], handlers={"test.pinged": handle})
    first, request = _publish_in_request(kafka_topic)
    relay.relay_pending()
    ConsumerRunner(spec).run(max_messages=1, idle_exit_s=5)
    relay.relay_pending()
    ConsumerRunner(spec).run(max_messages=1, idle_exit_s=5)

    trace_id = _hex(request, "trace_id")
    stored = _zipkin_trace(trace_id, until=lambda s: len(_named(s, "handle test.pinged")) == 2)
    by_seq = {s["tags"].get("event.id"): s for s in _named(stored, "handle test.pinged")}
    outer = by_seq.pop(first.id)
    (inner,) = by_seq.values()
    assert outer["parentId"] == _hex(request, "span_id")
    assert inner["parentId"] == outer["id"]
    assert inner["tags"]["order_id"] == "o-42"
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [(line["message"], line["seq"]) for line in lines] == [("handling", 1), ("handling", 2)]
    assert [line["trace_id"] for line in lines] == [trace_id, trace_id]
    assert [line["span_id"] for line in lines] == [outer["id"], inner["id"]]


def _batch_spec(topic: str, seen: list[list[str]]) -> ConsumerSpec:
    return ConsumerSpec(
        name=f"batch-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        batch_handler=lambda envelopes: seen.append([e.id for e in envelopes]),
    )


def test_a_batch_handler_runs_in_one_span_linked_to_every_traced_event(kafka_topic, spans):
    seen: list[list[str]] = []
    spec = _batch_spec(kafka_topic, seen)
    published = [_publish_in_request(kafka_topic, seq=seq) for seq in range(3)]
    relay.relay_pending()
    spans.clear()

    ConsumerRunner(spec, batch_size=100).run(max_messages=3, idle_exit_s=5)

    batch_spans = [s for s in spans.get_finished_spans() if s.name == f"handle batch {spec.name}"]
    assert sorted(i for ids in seen for i in ids) == sorted(e.id for e, _ in published)
    assert len(batch_spans) == len(seen)
    assert {link.context.span_id for s in batch_spans for link in s.links} == {r.span_id for _, r in published}
    assert sum(s.attributes["messaging.batch.message_count"] for s in batch_spans) == 3
    for span in batch_spans:
        assert span.kind is SpanKind.CONSUMER
        if len(span.links) == 1:  # one trace in the batch: the span sits in it, where Zipkin shows it
            assert span.parent.span_id == span.links[0].context.span_id
        else:
            assert span.parent is None


def test_a_batch_of_untraced_events_is_handled_without_a_span(kafka_bootstrap, kafka_topic, spans):
    seen: list[list[str]] = []
    spec = _batch_spec(kafka_topic, seen)
    trades = [Envelope.new("test.pinged", source="feed", subject="BTCUSDT", data={"seq": i}) for i in range(5)]
    produce(kafka_bootstrap, kafka_topic, [(b"BTCUSDT", e.to_json()) for e in trades])
    spans.clear()

    ConsumerRunner(spec, batch_size=100).run(max_messages=5, idle_exit_s=5)

    assert sorted(i for ids in seen for i in ids) == sorted(e.id for e in trades)
    assert spans.get_finished_spans() == ()


def test_a_request_continues_the_trace_of_an_incoming_traceparent(spans):
    parent_trace, parent_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    spans.clear()

    response = Client().get("/api/", headers={"traceparent": f"00-{parent_trace}-{parent_span}-01"})

    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert response.status_code == 200
    assert _hex(server.context, "trace_id") == parent_trace
    assert server.parent is not None and _hex(server.parent, "span_id") == parent_span
    assert server.attributes["http.method"] == "GET"
    assert response.headers["traceresponse"] == f"00-{parent_trace}-{_hex(server.context, 'span_id')}-01"
    assert server.resource.attributes["service.name"] == "platform_common"


def test_health_probes_make_no_spans(spans):
    spans.clear()

    assert Client().get("/healthz").status_code == 200

    assert spans.get_finished_spans() == ()


def test_a_prefork_worker_relays_in_the_request_trace_from_its_own_pool_process(
    kafka_topic, spans, spawn, relay_requests
):
    worker = spawn("worker", "--pool", "prefork", "--concurrency", "1")

    envelope, request = _publish_in_request(kafka_topic)

    stored = _zipkin_trace(
        _hex(request, "trace_id"),
        until=lambda s: _named(s, "run/common.outbox.tasks.relay_outbox") and _named(s, "relay test.pinged"),
        timeout=60,
    )
    (asked,) = _named(stored, "apply_async/common.outbox.tasks.relay_outbox")
    (ran,) = _named(stored, "run/common.outbox.tasks.relay_outbox")
    (relayed,) = _named(stored, "relay test.pinged")
    assert asked["parentId"] == _hex(request, "span_id")
    assert ran["parentId"] == asked["id"]
    assert relayed["parentId"] == _hex(request, "span_id")
    assert relayed["tags"]["event.id"] == envelope.id
    assert ran["tags"]["platform.process.kind"] == relayed["tags"]["platform.process.kind"] == "worker"
    # Exported by the pool process itself, which started its own SDK after the fork.
    instance = ran["tags"]["service.instance.id"]
    assert instance == relayed["tags"]["service.instance.id"]
    assert instance == f"{socket.gethostname()}:{instance.rsplit(':', 1)[1]}"
    assert instance.rsplit(":", 1)[1] != str(worker.popen.pid)


# --- switches and failures ------------------------------------------------------------------------------------


def test_with_tracing_disabled_a_consumer_exports_nothing_and_still_handles_events(kafka_topic, spans, spawn):
    envelope, request = _publish_in_request(kafka_topic)
    relay.relay_pending()

    consumer = spawn(
        "consume", "effects", "--max-messages", "1", "--idle-exit", "20",
        TEST_CONSUMER_TOPIC=kafka_topic, TRACING_ENABLED="false",
    )  # fmt: skip

    assert consumer.popen.wait(60) == 0
    assert Effect.objects.get().event_id == envelope.id
    stored = _zipkin_trace(_hex(request, "trace_id"), until=lambda s: bool(_named(s, "relay test.pinged")))
    assert _named(stored, "handle test.pinged") == []
    assert [s for s in stored if s["tags"].get("platform.process.kind") == "consumer"] == []
    assert "trace_id" not in consumer.output()


def test_an_unreachable_zipkin_fails_no_event_and_is_reported_once_not_per_span(kafka_topic, spans, spawn):
    for seq in range(30):
        _publish_in_request(kafka_topic, seq=seq)
    relay.relay_pending()

    consumer = spawn(
        "consume", "effects", "--max-messages", "30", "--idle-exit", "20",
        TEST_CONSUMER_TOPIC=kafka_topic, ZIPKIN_ENDPOINT=f"http://127.0.0.1:{_free_port()}/api/v2/spans",
        OTEL_BSP_SCHEDULE_DELAY="20", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="5",
    )  # fmt: skip

    assert consumer.popen.wait(60) == 0
    output = consumer.output()
    assert Effect.objects.count() == 30
    assert "handled 30" in output
    assert output.count("span export failed") == 1
    assert "Traceback" not in output and "Exception while exporting" not in output


def test_export_failures_never_block_the_code_that_ends_spans(caplog):
    provider = tracing.build_tracer_provider(
        service="platform_common", kind="test", endpoint=f"http://127.0.0.1:{_free_port()}/api/v2/spans"
    )
    local = provider.get_tracer("test")
    caplog.set_level(logging.WARNING)

    started = time.perf_counter()
    for round_ in range(3):
        for i in range(300):
            with local.start_as_current_span(f"work {round_}-{i}"):
                pass
        provider.force_flush()
    elapsed_per_span = (time.perf_counter() - started) / 900
    provider.shutdown()

    failures = [r for r in caplog.records if r.getMessage() == "span export failed; spans dropped"]
    assert len(failures) == 1
    assert failures[0].spans_lost >= 1
    assert not [r for r in caplog.records if r.exc_info]
    # Ending a span only queues it; the three failed exports above ran in force_flush, not per span.
    assert elapsed_per_span < 0.01


# --- sampling and process kinds -------------------------------------------------------------------------------


def _decision(sampler, name: str, kind: SpanKind, parent=None) -> Decision:
    return sampler.should_sample(parent, uuid.uuid4().int, name, kind).decision


def test_lone_queries_and_housekeeping_ticks_start_no_trace_but_requests_do():
    from django.conf import settings

    quiet = tracing.quiet_root_names(settings.CELERY_BEAT_SCHEDULE)
    sampler = tracing.make_sampler(1.0, quiet_roots=quiet)

    assert quiet == {"apply_async/common.outbox.tasks.sweep_outbox", "run/common.outbox.tasks.sweep_outbox"}
    assert _decision(sampler, "SELECT", SpanKind.CLIENT) is Decision.DROP
    assert _decision(sampler, "run/common.outbox.tasks.sweep_outbox", SpanKind.CONSUMER) is Decision.DROP
    assert _decision(sampler, "GET api/orders/", SpanKind.SERVER) is Decision.RECORD_AND_SAMPLE
    assert _decision(sampler, "run/common.outbox.tasks.purge_outbox", SpanKind.CONSUMER) is (Decision.RECORD_AND_SAMPLE)


def test_the_sample_ratio_decides_new_traces_and_children_follow_their_parent():
    never = tracing.make_sampler(0.0)
    sampled_parent = tracing.envelope_context(f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01")
    dropped_parent = tracing.envelope_context(f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00")

    assert _decision(never, "POST api/orders/", SpanKind.SERVER) is Decision.DROP
    assert _decision(never, "handle order.placed", SpanKind.CONSUMER, sampled_parent) is Decision.RECORD_AND_SAMPLE
    assert _decision(tracing.make_sampler(1.0), "handle x", SpanKind.CONSUMER, dropped_parent) is Decision.DROP


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["/srv/.venv/bin/gunicorn", "order_svc.wsgi:application"], "web"),
        (["/srv/.venv/bin/celery", "-A", "order_svc", "worker", "-Q", "order_svc"], "worker"),
        (["/srv/.venv/bin/celery", "-A", "order_svc", "beat"], "beat"),
        (["manage.py", "consume", "saga"], "consumer"),
        (["manage.py", "stream_market_data"], "feed"),
        (["manage.py", "migrate"], "command"),
    ],
)
def test_the_process_kind_is_read_from_the_command_line(argv, kind, monkeypatch):
    monkeypatch.delenv("TRACING_PROCESS_KIND", raising=False)

    assert tracing.process_kind(argv) == kind


def test_tracing_is_on_by_default_except_in_a_pytest_process(monkeypatch):
    monkeypatch.delenv("TRACING_ENABLED", raising=False)

    assert [tracing.tracing_enabled(kind) for kind in ("web", "worker", "consumer", "test")] == [
        True,
        True,
        True,
        False,
    ]
    monkeypatch.setenv("TRACING_ENABLED", "false")
    assert tracing.tracing_enabled("web") is False
