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
from common.outbox.services import Outgoing, publish, publish_many
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
    os.environ["TRACING_SAMPLE_RATIO"] = "1.0"  # every trace these tests start is kept (the default keeps 10%)
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


def _batch_spec(
    topic: str, seen: list[list[str]], handler: Callable[[list[Envelope]], None] | None = None
) -> ConsumerSpec:
    def handle(envelopes: list[Envelope]) -> None:
        seen.append([e.id for e in envelopes])
        if handler is not None:
            handler(envelopes)

    return ConsumerSpec(name=f"batch-{uuid.uuid4().hex[:8]}", topics=[topic], batch_handler=handle)


def test_a_batch_handler_gives_each_traced_event_its_own_span_and_its_answers_continue_it(kafka_topic, spans):
    answers: list[tuple[str, Envelope]] = []

    def answer(envelopes: list[Envelope]) -> None:
        outgoing = [Outgoing(kafka_topic, "test.pinged", e.subject, {"seq": 100}, cause=e) for e in envelopes]
        answers.extend(zip([e.id for e in envelopes], publish_many(outgoing), strict=True))

    seen: list[list[str]] = []
    spec = _batch_spec(kafka_topic, seen, answer)
    published = [_publish_in_request(kafka_topic, seq=seq) for seq in range(3)]
    relay.relay_pending()
    spans.clear()

    ConsumerRunner(spec, batch_size=100).run(max_messages=3, idle_exit_s=5)

    handled = {s.attributes["event.id"]: s for s in spans.get_finished_spans() if s.name == "handle test.pinged"}
    assert sorted(i for ids in seen for i in ids) == sorted(e.id for e, _ in published)
    assert set(handled) == {e.id for e, _ in published}  # one span per traced event, however they were batched
    for envelope, request in published:
        span = handled[envelope.id]
        assert span.kind is SpanKind.CONSUMER
        assert span.parent.span_id == request.span_id and span.context.trace_id == request.trace_id
        assert span.attributes["messaging.destination.name"] == kafka_topic
    by_cause = dict(answers)
    for envelope, request in published:
        answer_trace = by_cause[envelope.id].traceparent
        span = handled[envelope.id]
        assert answer_trace.startswith(f"00-{_hex(request, 'trace_id')}-{_hex(span.context, 'span_id')}-")
        assert int(answer_trace[-2:], 16) & 0x01  # sampled
        assert by_cause[envelope.id].causationid == envelope.id
        assert by_cause[envelope.id].correlationid == envelope.correlationid


def test_an_unsampled_event_makes_no_span_and_its_answer_keeps_the_decision(kafka_bootstrap, kafka_topic, spans):
    answers: list[Envelope] = []
    spec = _batch_spec(
        kafka_topic,
        [],
        lambda envelopes: answers.extend(
            publish_many([Outgoing(kafka_topic, "test.pinged", e.subject, {"seq": 1}, cause=e) for e in envelopes])
        ),
    )
    unsampled = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"
    event = Envelope.new("test.pinged", source="web", subject="k", data={"seq": 0}, traceparent=unsampled)
    produce(kafka_bootstrap, kafka_topic, [(b"k", event.to_json())])
    spans.clear()

    ConsumerRunner(spec, batch_size=100).run(max_messages=1, idle_exit_s=5)

    assert spans.get_finished_spans() == ()
    (answered,) = answers
    assert answered.traceparent == unsampled


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


@pytest.mark.parametrize(
    ("pool", "concurrency"),
    [("threads", "3"), ("prefork", "1")],  # threads: what the platform runs (manage_all, compose)
)
def test_a_worker_relay_loop_relays_in_the_request_trace_and_exports_from_the_process_that_ran_it(
    kafka_topic, spans, spawn, pool, concurrency
):
    from common.tests.celery_app import app

    worker = spawn("worker", "--pool", pool, "--concurrency", concurrency)
    app.send_task("common.outbox.tasks.relay_loop")  # as beat sends it; no task per commit any more

    envelope, request = _publish_in_request(kafka_topic)

    stored = _zipkin_trace(_hex(request, "trace_id"), until=lambda s: _named(s, "relay test.pinged"), timeout=60)
    (relayed,) = _named(stored, "relay test.pinged")
    assert relayed["parentId"] == _hex(request, "span_id")
    assert relayed["kind"] == "PRODUCER"
    assert relayed["tags"]["event.id"] == envelope.id
    assert relayed["tags"]["platform.process.kind"] == "worker"
    # Woken by the commit's NOTIFY: no Celery task joined the request's trace (the loop's own run is a
    # housekeeping root, dropped, or its SQL would make one endless trace).
    assert [s["name"] for s in stored if "/common.outbox.tasks." in s["name"]] == []
    # Exported by the process that ran the loop, which started its own SDK: the worker itself with threads
    # (worker_init), the pool child after the fork with prefork (worker_process_init).
    instance = relayed["tags"]["service.instance.id"]
    host, pid = instance.rsplit(":", 1)
    assert host == socket.gethostname()
    assert (pid == str(worker.popen.pid)) is (pool == "threads")


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

    assert quiet == {
        f"{step}/common.outbox.tasks.{task}"
        for step in ("apply_async", "run")
        for task in ("relay_loop", "sweep_outbox")
    }
    assert _decision(sampler, "SELECT", SpanKind.CLIENT) is Decision.DROP
    assert _decision(sampler, "run/common.outbox.tasks.sweep_outbox", SpanKind.CONSUMER) is Decision.DROP
    # The relay loop's run lasts minutes: kept, every pass's statements would hang under it in one trace.
    assert _decision(sampler, "run/common.outbox.tasks.relay_loop", SpanKind.CONSUMER) is Decision.DROP
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
