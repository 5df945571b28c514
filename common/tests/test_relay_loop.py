"""The relay loop against the real PostgreSQL and Kafka: woken by the outbox trigger's NOTIFY, one per database."""

from __future__ import annotations

import json
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, connections, transaction

from common.celery_app import worker_stopping
from common.outbox import relay, tasks
from common.outbox.models import OutboxMessage
from common.outbox.services import publish
from common.testing.kafka import read_topic

pytestmark = pytest.mark.django_db(transaction=True)

LONG_S = 30.0  # a run and a safety tick that no test waits out: what happens sooner was woken by a NOTIFY


def _publish(topic: str, *seqs: int) -> None:
    with transaction.atomic():
        for seq in seqs:
            publish(topic, "test.pinged", f"k{seq}", {"seq": seq})


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _lock_holder() -> int | None:
    """The backend pid holding this database's relay lock, if any (read from pg_locks; takes nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = %s "
            "AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [relay.RELAY_LOCK_KEY],
        )
        row = cursor.fetchone()
    return row[0] if row else None


class LoopThread:
    """relay_loop() in a thread of this process (its own Django connection, as in a threads-pool worker)."""

    def __init__(self, **options: float) -> None:
        self.stop = threading.Event()
        self.waiting = threading.Event()  # a pass is done and the loop is about to wait
        self.result: relay.RelayResult | None = None
        self._thread = threading.Thread(target=self._run, kwargs=options, daemon=True)
        self._thread.start()
        assert self.waiting.wait(10), "the loop never finished its first pass"

    def _should_stop(self) -> bool:
        self.waiting.set()
        return self.stop.is_set()

    def _run(self, **options: float) -> None:
        try:
            self.result = relay.relay_loop(should_stop=self._should_stop, **options)
        finally:
            connections.close_all()  # this thread's: the test database is flushed afterwards

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stopped_within(self, seconds: float) -> bool:
        self.stop.set()
        self._thread.join(seconds)
        return not self._thread.is_alive()


@pytest.fixture
def loop_thread() -> Iterator[Callable[..., LoopThread]]:
    started: list[LoopThread] = []

    def start(**options: float) -> LoopThread:
        started.append(LoopThread(**options))
        return started[-1]

    yield start
    for loop in started:
        assert loop.stopped_within(5)


@pytest.fixture
def listener() -> Iterator:
    """A second session LISTENing on the relay's channel; yields its psycopg2 connection."""
    other = connections.create_connection("default")
    other.ensure_connection()
    with other.cursor() as cursor:
        cursor.execute(f"LISTEN {relay.NOTIFY_CHANNEL}")
    yield other.connection
    other.close()


def _notifications(pg, *, within: float) -> list[tuple[str, str]]:
    """What this test's own session notified (another test run may share the database), waiting up to `within`."""
    ours = connection.connection.info.backend_pid
    found: list[tuple[str, str]] = []
    deadline = time.monotonic() + within
    while not found and (left := deadline - time.monotonic()) > 0:
        if select.select([pg], [], [], left)[0]:
            pg.poll()
        time.sleep(0.05)  # more than one would have come together, at the same commit
        pg.poll()
        found = [(n.channel, n.payload) for n in pg.notifies if n.pid == ours]
        del pg.notifies[:]
    return found


@pytest.fixture
def requeued(monkeypatch) -> list[tuple]:
    """relay_loop.delay() calls, recorded instead of sent."""
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.relay_loop, "delay", lambda *args, **kwargs: calls.append(args))
    return calls


# --- the trigger -----------------------------------------------------------------------------------------------


def test_the_trigger_notifies_a_listener_once_at_commit_and_not_before(kafka_topic, listener):
    with transaction.atomic():
        publish(kafka_topic, "test.pinged", "k1", {"seq": 1})
        publish(kafka_topic, "test.pinged", "k2", {"seq": 2})  # a second INSERT statement
        before_commit = _notifications(listener, within=0.3)

    assert before_commit == []
    assert _notifications(listener, within=5) == [("outbox_relay", "")]  # folded into one, at the commit


def test_a_rolled_back_transaction_notifies_nobody(kafka_topic, listener):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(kafka_topic, "test.pinged", "k1", {"seq": 1})
        raise RuntimeError("business rule failed after publishing")

    assert _notifications(listener, within=1) == []
    assert OutboxMessage.objects.count() == 0


# --- the loop --------------------------------------------------------------------------------------------------


def test_the_loop_relays_a_row_committed_while_it_waits_without_waiting_for_its_tick(
    kafka_bootstrap, kafka_topic, loop_thread
):
    loop = loop_thread(run_for_s=LONG_S, tick_s=LONG_S)

    _publish(kafka_topic, 7)
    (message,) = read_topic(kafka_bootstrap, kafka_topic, expected=1, timeout=10)

    assert json.loads(message.value())["data"] == {"seq": 7}
    _wait(lambda: OutboxMessage.objects.filter(published_at__isnull=False).exists(), timeout=5, what="the mark")
    assert loop.running  # woken by the NOTIFY: its 30 s tick and run are far off
    assert loop.stopped_within(2)  # each wait is at most a second
    assert loop.result.sent == 1 and loop.result.failed == 0


def test_a_second_loop_returns_at_once_while_the_first_holds_the_lock(kafka_topic, loop_thread, requeued):
    loop = loop_thread(run_for_s=LONG_S, tick_s=LONG_S)

    started = time.monotonic()
    second = relay.relay_loop(run_for_s=LONG_S)
    task_sent = tasks.relay_loop()
    elapsed = time.monotonic() - started

    assert second.locked_out and second.passes == 0
    assert task_sent == 0 and requeued == []  # a locked-out copy does not queue another
    assert relay.relay_pending().locked_out  # nor does the sweep relay beside it
    assert elapsed < 1.0
    assert loop.running


def test_the_loop_ends_after_its_run_and_lets_go_of_the_lock_and_the_channel(kafka_bootstrap, kafka_topic):
    _publish(kafka_topic, 1, 2, 3)

    started = time.monotonic()
    result = relay.relay_loop(run_for_s=2.0, tick_s=0.25)
    elapsed = time.monotonic() - started

    assert result.sent == 3 and result.failed == 0 and not result.locked_out
    assert result.passes >= 2  # the first pass (a fresh producer's may take a second) and ticks after it
    assert 2.0 <= elapsed < 3.5
    assert _lock_holder() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_listening_channels()")
        assert cursor.fetchall() == []
    assert len(read_topic(kafka_bootstrap, kafka_topic, expected=3, timeout=10)) == 3


def test_the_task_queues_its_next_run_after_a_bounded_one_but_not_when_the_worker_stops(settings, requeued):
    settings.OUTBOX_RELAY_LOOP_S = 0.2

    tasks.relay_loop()
    assert len(requeued) == 1

    worker_stopping.set()
    try:
        started = time.monotonic()
        tasks.relay_loop()
        elapsed = time.monotonic() - started
    finally:
        worker_stopping.clear()
    assert len(requeued) == 1
    assert elapsed < 0.2  # one pass, then it saw the stop


def test_a_lost_database_connection_ends_the_loop_and_frees_the_lock(loop_thread):
    loop = loop_thread(run_for_s=LONG_S, tick_s=LONG_S)
    holder = _lock_holder()
    assert holder is not None

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [holder])

    _wait(lambda: not loop.running, timeout=5, what="the loop to return")
    assert loop.result.connection_lost and not loop.result.locked_out
    assert _lock_holder() is None


# --- in a real worker ------------------------------------------------------------------------------------------


def test_a_threads_pool_worker_runs_the_loop_from_its_relay_queue_and_stops_it_at_sigterm(
    kafka_bootstrap, kafka_topic, spawn
):
    from common.tests.celery_app import app

    worker = spawn("worker", "--pool", "threads", "--concurrency", "3")
    app.send_task("common.outbox.tasks.relay_loop")  # routed to platform_common.relay, as beat sends it
    _wait(lambda: _lock_holder() is not None, timeout=60, what="the worker's relay loop")

    _publish(kafka_topic, 1)
    assert len(read_topic(kafka_bootstrap, kafka_topic, expected=1, timeout=10)) == 1  # no beat: the loop sent it

    worker.popen.send_signal(signal.SIGTERM)  # a warm shutdown: it waits for running tasks, the loop among them
    started = time.monotonic()
    assert worker.popen.wait(15) == 0, worker.output()
    assert time.monotonic() - started < 10  # not the 300 s of the loop's run
    assert _lock_holder() is None
