"""The consumer base: read a batch, handle it in one database transaction, then commit the offsets.

For each batch of messages, in one transaction: claim every event id in the inbox (a duplicate is
skipped and counted), run the handlers (which may publish through the outbox), record dead letters;
commit; only then commit the Kafka offsets. A crash anywhere before the offset commit redelivers the
batch, and the inbox turns the redelivery into no effect.

When the batch fails, its messages are handled again one transaction each, so one bad message cannot
hold the others back: a handler error is retried with backoff up to `max_attempts`, then the message
is dead-lettered (stored here and sent to `<topic>.dlq` through the outbox) and the consumer moves on.
A malformed message is dead-lettered at once; a well-formed event of a type this consumer has no
handler for is skipped. When the database itself is unreachable nothing is dead-lettered: the consumer
waits with backoff and retries the same messages, since giving up would lose good events.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils.module_loading import import_string

from common import namespace
from common.consumers.models import DeadLetter
from common.correlation import caused_by
from common.events import Envelope, EventError, MalformedEvent, UnknownEventType
from common.kafka import client_config
from common.logging import ids_of
from common.outbox.services import enqueue_raw
from common.topics import dlq
from common.tracing import handling_spans, in_span

logger = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]
BatchHandler = Callable[[list[Envelope]], None]


# How often a busy consumer commits its offsets (asynchronously): redelivery after a crash is bounded by it.
# settings.CONSUMER_COMMIT_INTERVAL_S overrides it.
COMMIT_INTERVAL_S = 0.2


class PermanentError(Exception):
    """A handler's verdict that retrying cannot help: the message goes to the dead-letter topic at once."""


@dataclass
class ConsumerSpec:
    """What one consumer group reads and how it handles it; declared in a service's handlers.py."""

    name: str
    topics: list[str]
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Replaces per-event dispatch: gets every new event of a batch at once, in offset order, inside the batch's
    # transaction, and handles them set-based (one locking SELECT, effects folded in memory, bulk writes).
    batch_handler: BatchHandler | None = None
    # The event types the batch handler reads; None: every type. Others are skipped from the ce_type header.
    types: frozenset[str] | None = None
    # False where the handler is idempotent by a natural key of its own (the last trade id per symbol).
    inbox: bool = True
    max_attempts: int = 5

    def handles(self, type_: str) -> bool:
        if self.batch_handler is not None:
            return self.types is None or type_ in self.types
        return type_ in self.handlers

    @property
    def group_id(self) -> str:
        return f"{settings.SERVICE_NAME}.{self.name}"


@dataclass
class ConsumerStats:
    received: int = 0
    handled: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retried_batches: int = 0
    first_batch_at: float | None = None  # time.monotonic() when the first batch arrived (benchmarks)


@dataclass
class _Item:
    msg: Message
    envelope: Envelope | None = None
    error: str | None = None  # malformed: dead-letter without handling


def _ce_type(msg: Message) -> str | None:
    """The event type the publisher put in the ce_type header (None when the message has no such header)."""
    for key, value in msg.headers() or ():
        if key == "ce_type":
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


def _topic(msg: Message) -> str:
    """The logical topic of a message (what inbox rows, dead letters and the outbox name), not this run's."""
    return namespace.logical_topic(msg.topic())


def consumer_specs() -> dict[str, ConsumerSpec]:
    """The consumers this service declares (settings.PLATFORM_CONSUMERS: dotted path to a list)."""
    path = getattr(settings, "PLATFORM_CONSUMERS", None)
    if not path:
        return {}
    return {spec.name: spec for spec in import_string(path)}


def kafka_consumer_config(group_id: str, **overrides: object) -> dict[str, object]:
    return {
        **client_config(),  # the service's own principal: it may read only the topics it consumes
        "group.id": namespace.group(group_id),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # A killed consumer's partitions move to the survivors within seconds.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "partition.assignment.strategy": "cooperative-sticky",
        "client.id": f"{settings.SERVICE_NAME}-{group_id}",
        **overrides,
    }


class ConsumerRunner:
    def __init__(self, spec: ConsumerSpec, *, batch_size: int = 500, poll_timeout: float = 0.5):
        self.spec = spec
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.stats = ConsumerStats()
        self._stopping = False
        self._consumer: Consumer | None = None
        # The position after the last handled message of each partition, and the partitions whose position has
        # moved since the last commit.
        self._positions: dict[tuple[str, int], int] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._committed_at = 0.0

    # --- lifecycle --------------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the batch in hand, commit, and leave (SIGTERM / SIGINT)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, max_messages: int | None = None, idle_exit_s: float | None = None) -> ConsumerStats:
        self._consumer = Consumer(kafka_consumer_config(self.spec.group_id))
        self._consumer.subscribe([namespace.topic(t) for t in self.spec.topics], on_revoke=self._on_revoke)
        logger.info("consumer started", extra={"consumer": self.spec.name, "topics": self.spec.topics})
        idle_since = time.monotonic()
        try:
            while not self._stopping:
                messages = self._next_batch()
                messages = [m for m in messages if self._usable(m)]
                if not messages:
                    self._commit_offsets([])  # what is due from the last batches, now that traffic paused
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                if self.stats.first_batch_at is None:
                    self.stats.first_batch_at = idle_since
                self.handle_messages(messages)
                self._commit_offsets(messages)
                if max_messages is not None and self.stats.received >= max_messages:
                    break
            self._commit_offsets([], asynchronous=False)  # what async commits may not have finished yet
        finally:
            self._consumer.close()
            close_old_connections()
            logger.info("consumer stopped", extra={"consumer": self.spec.name, **self.stats.__dict__})
        return self.stats

    def _next_batch(self) -> list[Message]:
        """Wait for one message, then take what is already fetched, up to the batch size.

        consume(n, timeout) alone waits for a full batch or the timeout, which would add up to poll_timeout
        of latency to every hop of a saga when traffic is light; this way a lone message goes at once and a
        busy topic still comes in full batches.
        """
        first = self._consumer.poll(self.poll_timeout)
        if first is None:
            return []
        return [first, *self._consumer.consume(self.batch_size - 1, 0)] if self.batch_size > 1 else [first]

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        if err.fatal():
            raise KafkaException(err)
        logger.warning("kafka consumer error", extra={"consumer": self.spec.name, "error": str(err)})
        return False

    def _commit_offsets(self, messages: list[Message], *, asynchronous: bool = True) -> None:
        """Record the positions after `messages` (their transaction has committed) and commit what is due.

        Asynchronous and at most every CONSUMER_COMMIT_INTERVAL_S: the next batch never waits for the broker, and a busy
        consumer sends one OffsetCommit per interval, not one per batch. What a crash loses of that is only
        redelivered, and the inbox (or the handler's own natural key) skips it. A clean stop commits the
        positions of the partitions still assigned synchronously; a revoked partition's, as it is revoked.
        """
        for msg in messages:
            key = (msg.topic(), msg.partition())
            self._positions[key] = max(self._positions.get(key, OFFSET_INVALID), msg.offset() + 1)
            self._dirty.add(key)
        if asynchronous:
            now = time.monotonic()
            interval = getattr(settings, "CONSUMER_COMMIT_INTERVAL_S", COMMIT_INTERVAL_S)
            if not self._dirty or now - self._committed_at < interval:
                return
            self._committed_at = now
            touched, self._dirty = self._dirty, set()
        else:
            touched = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        self._commit(touched, asynchronous=asynchronous)

    def _commit(self, partitions: set[tuple[str, int]], *, asynchronous: bool) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._positions.items() if (t, p) in partitions]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            # The partitions moved to another member (rebalance): it redelivers, the inbox drops it.
            logger.warning("offset commit failed", extra={"consumer": self.spec.name, "error": str(exc)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A rebalance takes partitions away: commit their positions first, so their next owner starts there."""
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._commit(revoked & self._dirty, asynchronous=False)
        self._dirty -= revoked
        for key in revoked:
            self._positions.pop(key, None)

    # --- handling ---------------------------------------------------------------------------------

    def handle_messages(self, messages: list[Message]) -> None:
        """Handle one batch: all in one transaction, or one by one when that fails."""
        self.stats.received += len(messages)
        self.stats.batches += 1
        items = [self._parse(m) for m in messages]
        items = [i for i in items if i is not None]
        if not items:
            return
        try:
            self._with_database(lambda: self._handle_in_one_transaction(items))
        except Exception as exc:  # noqa: BLE001 - any handler failure: isolate the message that causes it
            logger.warning(
                "batch failed; handling its messages one by one",
                extra={"consumer": self.spec.name, "error": repr(exc), "size": len(items)},
            )
            self.stats.retried_batches += 1
            for item in items:
                self._handle_alone(item)

    def _parse(self, msg: Message) -> _Item | None:
        declared = _ce_type(msg)
        if declared is not None and not self.spec.handles(declared):
            self.stats.skipped += 1  # not ours: neither parsed nor validated
            return None
        try:
            envelope = Envelope.from_json(msg.value())
        except UnknownEventType:
            self.stats.skipped += 1
            return None
        except MalformedEvent as exc:
            return _Item(msg, error=f"malformed: {exc}")
        if not self.spec.handles(envelope.type):
            self.stats.skipped += 1
            return None
        return _Item(msg, envelope)

    def _handle_in_one_transaction(self, items: list[_Item]) -> None:
        with transaction.atomic():
            good = [i for i in items if i.envelope is not None]
            fresh = self._claim(good)
            self._dispatch(fresh)
            for item in items:
                if item.error is not None:
                    self._dead_letter(item, item.error, attempts=1)
        self.stats.handled += len(fresh)
        if duplicates := len(good) - len(fresh):
            self.stats.duplicates += duplicates
            logger.info("inbox skipped duplicates", extra={"consumer": self.spec.name, "duplicates": duplicates})

    def _handle_alone(self, item: _Item) -> bool:
        """Handle one message in a transaction of its own, with bounded retries; False: it was dead-lettered."""
        if item.error is not None:
            self._with_database(lambda: self._dead_letter_in_transaction(item, item.error, 1))
            return False
        error = ""
        for attempt in range(1, self.spec.max_attempts + 1):
            try:
                self._with_database(lambda: self._handle_in_one_transaction([item]))
                return True
            except PermanentError as exc:
                error = f"permanent: {exc}"
                break
            except EventError as exc:
                error = f"invalid: {exc}"
                break
            except Exception as exc:  # noqa: BLE001 - retried with a bound, then dead-lettered with the error
                error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "handler failed",
                    extra={
                        "consumer": self.spec.name,
                        "event_id": item.envelope.id,
                        "attempt": attempt,
                        "error": error,
                    },
                )
                if attempt < self.spec.max_attempts:
                    time.sleep(min(5.0, 0.1 * 2 ** (attempt - 1)))
        self._with_database(lambda: self._dead_letter_in_transaction(item, error, attempt))
        return False

    def _with_database(self, work: Callable[[], None]) -> None:
        """Run `work`; while the database is unreachable, wait and try again (never dead-letter for that)."""
        delay = 0.5
        while True:
            try:
                return work()
            except (OperationalError, InterfaceError) as exc:
                if connection.is_usable():
                    raise  # the database answers: this is the handler's error, not an outage
                logger.warning("database unreachable; retrying", extra={"consumer": self.spec.name, "error": str(exc)})
                close_old_connections()
                connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                if self._stopping:
                    raise

    def _claim(self, items: list[_Item]) -> list[_Item]:
        """Insert (consumer, event id) for each item; return those not seen before, in their order."""
        if not items:
            return []
        if not self.spec.inbox:
            return items
        rows = [
            (self.spec.name, i.envelope.id, i.envelope.type, _topic(i.msg), i.msg.partition(), i.msg.offset())
            for i in items
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO inbox_messages (consumer, event_id, event_type, topic, partition, "offset", processed_at) '
                "SELECT c, e, t, tp, p, o, now() FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::int[], %s::bigint[]) AS u(c, e, t, tp, p, o) "
                "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
                [list(col) for col in zip(*rows, strict=True)],
            )
            claimed = {row[0] for row in cursor.fetchall()}
        fresh, seen = [], set()
        for item in items:
            if item.envelope.id in claimed and item.envelope.id not in seen:
                seen.add(item.envelope.id)  # the same event twice in one batch counts once
                fresh.append(item)
        return fresh

    def _dispatch(self, items: list[_Item]) -> None:
        if not items:
            return
        envelopes = [i.envelope for i in items]
        positions = {i.envelope.id: (_topic(i.msg), i.msg.partition(), i.msg.offset()) for i in items}
        # A span per event whose trace is sampled, none for the rest: what a handler publishes for an event
        # continues that event's trace.
        with handling_spans(envelopes, consumer=self.spec.name, positions=positions) as spans:
            if self.spec.batch_handler is not None:
                self.spec.batch_handler(envelopes)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("batch handled", extra={"consumer": self.spec.name, "size": len(envelopes)})
                return
            for envelope in envelopes:
                with (
                    in_span(spans.get(envelope.id)),
                    caused_by(
                        correlation_id=envelope.correlationid,
                        causation_id=envelope.id,
                        envelope=envelope,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        # every line the handler logs names the order / saga / fill / user it is about
                        **ids_of(envelope.data),
                    ),
                ):
                    self.spec.handlers[envelope.type](envelope)
                    logger.info("event handled", extra={"consumer": self.spec.name})

    def _dead_letter_in_transaction(self, item: _Item, error: str, attempts: int) -> None:
        with transaction.atomic():
            if item.envelope is not None:
                self._claim([item])  # so a redelivery of the same event is not handled after all
            self._dead_letter(item, error, attempts)

    def _dead_letter(self, item: _Item, error: str, attempts: int) -> None:
        msg = item.msg
        headers = [(k, v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in (msg.headers() or [])]
        position = {
            "consumer": self.spec.name,
            "topic": _topic(msg),
            "partition": msg.partition(),
            "offset": msg.offset(),
        }
        _, created = DeadLetter.objects.get_or_create(
            **position,
            defaults={
                "key": msg.key(),
                "value": msg.value(),
                "headers": [list(h) for h in headers],
                "event_id": item.envelope.id if item.envelope else "",
                "event_type": item.envelope.type if item.envelope else "",
                "error": error[:10_000],
                "attempts": attempts,
            },
        )
        if created:
            enqueue_raw(
                topic=dlq(_topic(msg)),
                key=msg.key(),
                payload=msg.value() or b"",
                headers=[
                    *headers,
                    ("dlq_error", error[:1000]),
                    ("dlq_consumer", self.spec.name),
                    ("dlq_topic", _topic(msg)),
                    ("dlq_partition", str(msg.partition())),
                    ("dlq_offset", str(msg.offset())),
                ],
            )
            self.stats.dead_lettered += 1
        logger.error("message dead-lettered", extra={**position, "error": error[:500]})


class _StoredMessage:
    """A dead letter read the way the runner reads a Kafka message."""

    def __init__(self, letter: DeadLetter):
        self._letter = letter

    def topic(self) -> str:
        return namespace.topic(self._letter.topic)

    def partition(self) -> int:
        return self._letter.partition

    def offset(self) -> int:
        return self._letter.offset

    def key(self) -> bytes | None:
        return self._letter.key and bytes(self._letter.key)

    def value(self) -> bytes:
        return bytes(self._letter.value or b"")

    def headers(self) -> list[tuple[str, str]]:
        return [tuple(h) for h in self._letter.headers]

    def error(self) -> None:
        return None


def replay_dead_letters(letters: Iterable[DeadLetter], *, specs: dict[str, ConsumerSpec] | None = None) -> int:
    """Hand dead letters back to the consumer that gave up on them, in this process; returns how many it handled.

    Not through Kafka: a consumer may not write the topics it reads (the broker's ACLs), and putting a message
    back on its topic would deliver it to every other consumer group as well. Each letter goes through the
    consumer's own path (inbox claim, handler, retries) in a transaction of its own; one that fails again stays
    a dead letter (its inbox row claimed again, so a redelivery does not slip past it).
    """
    from django.utils import timezone

    from common.consumers.models import InboxMessage

    specs = consumer_specs() if specs is None else specs
    handled = 0
    for letter in letters:
        spec = specs.get(letter.consumer)
        if spec is None:
            logger.warning("dead letter of an unknown consumer kept", extra={"consumer": letter.consumer})
            continue
        runner = ConsumerRunner(spec)
        item = runner._parse(_StoredMessage(letter))
        if item is None or item.error is not None:
            continue  # malformed, or a type the consumer no longer reads: nothing to hand back
        if letter.event_id:
            InboxMessage.objects.filter(consumer=letter.consumer, event_id=letter.event_id).delete()
        if runner._handle_alone(item):
            letter.replayed_at = timezone.now()
            letter.save(update_fields=["replayed_at"])
            handled += 1
    return handled
