"""The relay: moves outbox rows to Kafka, oldest first, one relay per database at a time.

A row is marked published only after Kafka acknowledged it (acks=all, idempotent producer). A crash
between the acknowledgement and the mark sends the row again on the next run: delivery is at least
once, and consumers drop the duplicate by event id. A failed delivery is written on the row (attempts,
last error) and retried after a backoff; rows behind it wait, so per-key order holds.

Two ways in, both under the same session advisory lock: relay_loop() holds it for a bounded time and
relays whenever the outbox table's trigger NOTIFYs at a commit (and on a short safety tick);
relay_pending() is one pass, for beat's sweep when no loop runs. Neither waits for the lock.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg2
from confluent_kafka import KafkaException, Producer
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from common import namespace
from common.bulk import delete_older_than
from common.kafka import producer_config
from common.tracing import RelaySpans

logger = logging.getLogger(__name__)

# pg_advisory_lock key: "outbox relay" (one per database, since each service has its own).
RELAY_LOCK_KEY = 0x0B0C_5E1A
BATCH_SIZE = 5000
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
# The channel the outbox_messages trigger NOTIFYs at each commit that inserted rows (migration 0002).
NOTIFY_CHANNEL = "outbox_relay"
# relay_loop(): a pass at least this often without a notification (backoffs ending, a lost wake-up), and
# never a longer wait than this, so a stop request is seen within it.
SAFETY_TICK_S = 1.0
MAX_WAIT_S = 1.0
# A broken database connection, as Django reports it or as psycopg2 does on the raw connection (poll()).
CONNECTION_ERRORS = (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    locked_out: bool = False
    passes: int = 0
    connection_lost: bool = False


_producer: Producer | None = None
_producer_pid: int | None = None
_producer_lock = threading.Lock()


def get_producer() -> Producer:
    """One producer per process (made after a fork, never shared with a parent)."""
    global _producer, _producer_pid
    with _producer_lock:
        if _producer is None or _producer_pid != os.getpid():
            timeout_ms = int(getattr(settings, "OUTBOX_DELIVERY_TIMEOUT_S", 30) * 1000)
            _producer = Producer(
                producer_config(
                    settings.KAFKA_BOOTSTRAP_SERVERS,
                    **{"message.timeout.ms": timeout_ms, "client.id": f"{settings.SERVICE_NAME}-relay"},
                )
            )
            _producer_pid = os.getpid()
        return _producer


def reset_producer() -> None:
    global _producer
    with _producer_lock:
        _producer = None


def relay_pending(*, batch_size: int = BATCH_SIZE, using: str = "default") -> RelayResult:
    """One pass, unless another relay holds the lock (then nothing, at once: that relay sends these rows too).

    Every pending row that is due goes, oldest first, until none is left or a delivery fails; see _relay_all().
    """
    connection = connections[using]
    connection.ensure_connection()
    result = RelayResult()
    if not _try_lock(connection):
        result.locked_out = True
        return result
    try:
        _relay_all(connection, batch_size, result)
    finally:
        _unlock(connection)
    if result.sent or result.failed:
        logger.info("outbox relayed", extra={"sent": result.sent, "failed": result.failed})
    return result


def relay_loop(
    *,
    run_for_s: float,
    tick_s: float = SAFETY_TICK_S,
    should_stop: Callable[[], bool] = lambda: False,
    batch_size: int = BATCH_SIZE,
    using: str = "default",
) -> RelayResult:
    """Hold the relay lock for up to `run_for_s` and relay at every commit that wrote outbox rows.

    Returns at once (locked_out) when another relay holds the lock. Otherwise LISTENs first, so no commit
    falls between the first pass and the first wait, then relays, waits on the connection's socket for a
    NOTIFY (at most MAX_WAIT_S at a time, checking `should_stop` in between) and relays again on each one,
    and every `tick_s` without one. A broken connection is closed and the loop returns (connection_lost):
    whoever restarts it gets a fresh one.
    """
    connection = connections[using]
    result = RelayResult()
    started = time.monotonic()
    try:
        connection.ensure_connection()
        if not _try_lock(connection):
            result.locked_out = True
            return result
        try:
            _listen_and_relay(connection, started + run_for_s, tick_s, should_stop, batch_size, result)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"UNLISTEN {NOTIFY_CHANNEL}")
            _drain(connection.connection)
            _unlock(connection)
    except CONNECTION_ERRORS as exc:
        logger.warning("outbox relay loop: database connection lost; closing it", extra={"error": str(exc)})
        result.connection_lost = True
        connection.close()
    if not result.locked_out:
        logger.info(
            "outbox relay loop ended",
            extra={
                "sent": result.sent,
                "failed": result.failed,
                "passes": result.passes,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
    return result


def _listen_and_relay(connection, deadline: float, tick_s: float, should_stop, batch_size, result) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
    pg = connection.connection  # the psycopg2 connection: its socket, poll() and notifies
    due = True  # a first pass for what was committed before the LISTEN
    next_tick = 0.0
    while True:
        now = time.monotonic()
        if due or now >= next_tick:
            _relay_all(connection, batch_size, result)
            result.passes += 1
            now = time.monotonic()
            next_tick = now + tick_s
        if should_stop() or now >= deadline:
            return
        due = _wait_for_notify(pg, max(0.0, min(MAX_WAIT_S, next_tick - now, deadline - now)))


def _wait_for_notify(pg, timeout: float) -> bool:
    """Whether a NOTIFY arrived, waiting up to `timeout` for one; every notification so far is drained.

    Notifications that came in during the last pass's queries are already in `notifies`: no wait then.
    """
    if not pg.notifies and select.select([pg], [], [], timeout)[0]:
        pg.poll()  # reads what arrived; raises if the server closed the connection
    return _drain(pg)


def _drain(pg) -> bool:
    arrived = bool(pg.notifies)
    del pg.notifies[:]
    return arrived


def _try_lock(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [RELAY_LOCK_KEY])
        return cursor.fetchone()[0]


def _unlock(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [RELAY_LOCK_KEY])


def _relay_all(connection, batch_size: int, result: RelayResult) -> None:
    """The relay body, run by a caller that holds the relay lock on `connection`.

    Batches are pipelined: the next batch is read and handed to the producer while Kafka acknowledges the
    previous one, and acknowledged rows are marked as the acks arrive. After a failure nothing more is
    produced in this pass, so rows behind a failed one never overtake it.
    """
    producer = get_producer()
    acked: list[int] = []
    errors: dict[int, str] = {}
    produced: list[int] = []
    acked_ever: set[int] = set()
    spans = RelaySpans()  # a PRODUCER span per traced event, from hand-over to acknowledgement

    def on_delivery(row_id: int):
        def callback(err, msg) -> None:
            spans.end(row_id, err, msg)
            if err is None:
                acked.append(row_id)
                acked_ever.add(row_id)
            else:
                errors[row_id] = str(err)

        return callback

    last_id = 0
    topics: dict[str, str] = {}  # a row's topic -> this run namespace's name of it
    with connection.cursor() as cursor:
        while not errors:
            # The headers come as two text arrays (names, values) and the payload as bytes: psycopg2 builds
            # both in C, where parsing each row's jsonb in Python cost more than producing it.
            cursor.execute(
                "SELECT id, topic, key, payload, "
                "ARRAY(SELECT h->>0 FROM jsonb_array_elements(headers) h), "
                "ARRAY(SELECT h->>1 FROM jsonb_array_elements(headers) h), next_attempt_at "
                "FROM outbox_messages WHERE published_at IS NULL AND id > %s ORDER BY id LIMIT %s",
                [last_id, batch_size],
            )
            rows = cursor.fetchall()
            now = timezone.now()
            for row_id, topic, key, payload, names, values, next_attempt_at in rows:
                if next_attempt_at is not None and next_attempt_at > now:
                    rows = []  # the oldest pending row is backing off: nothing behind it may overtake it
                    break
                headers = list(zip(names, values, strict=True)) if names else None
                value = bytes(payload)
                spans.start(row_id, topic=topic, payload=value, headers=headers)
                if (destination := topics.get(topic)) is None:
                    destination = topics[topic] = namespace.topic(topic)
                _produce(
                    producer,
                    errors,
                    row_id,
                    topic=destination,
                    value=value,
                    key=key.encode() if key else None,
                    headers=headers,
                    on_delivery=on_delivery(row_id),
                )
                produced.append(row_id)
                last_id = row_id
                if errors:
                    if row_id in errors:  # refused at hand-over: no delivery report will end its span
                        spans.end(row_id, errors[row_id])
                    break
            producer.poll(0)  # serve the delivery reports that already arrived
            _mark_published(cursor, acked, result)
            if len(rows) < batch_size:
                break

        timeout = getattr(settings, "OUTBOX_DELIVERY_TIMEOUT_S", 30) + 5
        if producer.flush(timeout) > 0:
            logger.warning("outbox relay: deliveries still pending after flush; they will be retried")
            reset_producer()  # a fresh producer next time, so late reports cannot race a retry
        _mark_published(cursor, acked, result)
        for row_id in produced:
            if row_id not in acked_ever and row_id not in errors:
                errors[row_id] = "no delivery report before the timeout"
        spans.end_all("no delivery report before the timeout")
        if errors:
            _record_failures(cursor, errors)
            result.failed += len(errors)


def _produce(producer: Producer, errors: dict[int, str], row_id: int, **message) -> None:
    while True:
        try:
            producer.produce(**message)
            return
        except BufferError:
            producer.poll(0.05)  # the local queue is full: let deliveries drain
        except KafkaException as exc:
            errors[row_id] = str(exc)
            return


def _mark_published(cursor, acked: list[int], result: RelayResult) -> None:
    if not acked:
        return
    ids = acked[:]
    del acked[: len(ids)]
    cursor.execute("UPDATE outbox_messages SET published_at = now() WHERE id = ANY(%s)", [ids])
    result.sent += len(ids)


def _record_failures(cursor, errors: dict[int, str]) -> None:
    first = min(errors)
    attempts = _attempts_of(cursor, first) + 1
    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
    cursor.execute(
        "UPDATE outbox_messages SET attempts = attempts + 1, last_error = %s, "
        "next_attempt_at = now() + %s WHERE id = ANY(%s)",
        [errors[first][:2000], timedelta(seconds=delay), list(errors)],
    )
    logger.warning(
        "outbox delivery failed; retrying after backoff",
        extra={"failed": len(errors), "error": errors[first], "retry_in_s": delay},
    )


def _attempts_of(cursor, row_id: int) -> int:
    cursor.execute("SELECT attempts FROM outbox_messages WHERE id = %s", [row_id])
    row = cursor.fetchone()
    return row[0] if row else 0


def purge_published(*, older_than: timedelta, using: str = "default", chunk: int = 10_000) -> int:
    """Delete rows published before the retention period, in chunks; returns how many."""
    return delete_older_than("outbox_messages", "published_at", older_than=older_than, chunk=chunk, using=using)
