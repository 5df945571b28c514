"""Order status changes as PostgreSQL notifications, so a request can wait for an order's outcome without polling.

Sending: every status change is published through order_events_emit (the saga's replies and deadlines, the fill
engine, cancels), which also calls statuses_notify for the orders of its batch whose status changed: one
`SELECT pg_notify(...) FROM unnest(...)` whatever the batch's size, inside the transaction that makes the change,
so PostgreSQL delivers it at that commit and never after a rollback.

Hearing: one daemon thread per process (started by the first wait, again after a fork) holds a connection of its
own that LISTENs on the channel and wakes the waiters of each order it hears about (a threading.Event each). A
waiter is registered before its request reads the order's state, so a change committed after that read is heard.
While the listener is away (the database restarted) changes go unheard: when it is back it wakes every waiter to
read the state again, and a wait that ends while it is away reads it once more.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import psycopg2
from django.db import DatabaseError, connection, connections

from orders import selectors
from orders.models import OrderStatus
from orders.selectors import OrderState

if TYPE_CHECKING:
    from orders.models import Order

logger = logging.getLogger(__name__)

CHANNEL = "order_status"
RECONNECT_S = 1.0
# How far an order has come: a notification delivered late never takes a waiter's state back.
_PROGRESS = {OrderStatus.PENDING_NEW: 0, OrderStatus.NEW: 1, OrderStatus.PARTIALLY_FILLED: 2}
_FINAL_PROGRESS = 3


def _progress(status: str) -> int:
    return _PROGRESS.get(status, _FINAL_PROGRESS)


# --- sending ----------------------------------------------------------------------------------------------------


def _payload(order: Order) -> str:
    at_ms = int(order.updated_at.timestamp() * 1000) if order.updated_at else 0
    return f"{order.id} {order.status} {at_ms} {order.reason}"


def _parse(payload: str) -> tuple[str, OrderState] | None:
    parts = payload.split(" ", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    order_id, status, at_ms, reason = parts
    return order_id, OrderState(status=status, reason=reason, updated_at_ms=int(at_ms))


def statuses_notify(orders: Iterable[Order]) -> None:
    """Tell the waiters of these orders their new state, at the commit of the caller's transaction: one statement.

    Each order's state as it is now (a batch that changed an order twice sends its last state)."""
    latest = {order.id: order for order in orders}
    if not latest:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
            [CHANNEL, [_payload(order) for order in latest.values()]],
        )


# --- hearing ----------------------------------------------------------------------------------------------------


RECHECK = object()  # what a waiter hears when the listener is back: read the state again


class Waiter:
    """One request waiting for one order: the latest state heard, or the word to read it again."""

    def __init__(self, order_id: str, *, heard_from_start: bool):
        self.order_id = order_id
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._state: OrderState | None = None
        self._recheck = False
        # False while a change may have gone unheard (the listener was away): then the last word is a read.
        self.reliable = heard_from_start

    def _hear(self, state: OrderState) -> None:
        with self._lock:
            if self._state is None or _progress(state.status) >= _progress(self._state.status):
                self._state = state
        self._event.set()

    def _listener_back(self) -> None:
        with self._lock:
            self._recheck = True
            self.reliable = True
        self._event.set()

    def _listener_away(self) -> None:
        with self._lock:
            self.reliable = False

    def next(self, timeout: float) -> OrderState | object | None:
        """The next word within `timeout` seconds: a state heard, RECHECK, or None (nothing came)."""
        if not self._event.wait(timeout):
            return None
        with self._lock:
            self._event.clear()
            state, recheck = self._state, self._recheck
            self._state, self._recheck = None, False
        return RECHECK if recheck else state


class StatusListener:
    """The process's one LISTEN connection and the waiters it wakes."""

    def __init__(self, *, using: str = "default"):
        self._using = using
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self.connected = False

    def _ensure_started(self) -> None:
        if self._pid != os.getpid():  # a forked child (gunicorn's workers): the parent's thread did not come along
            self._reset()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._wake_r, self._wake_w = os.pipe()
            self._thread = threading.Thread(target=self._run, name="order-status-listener", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the thread (tests; a process that exits needs nothing)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        thread.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._thread = None

    @contextlib.contextmanager
    def watching(self, order_id) -> Iterator[Waiter]:
        """A waiter for this order for the time of the block; register it before reading the order's state."""
        self._ensure_started()
        key = str(order_id)
        with self._lock:
            waiter = Waiter(key, heard_from_start=self.connected)
            self._waiters[key].add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[key]

    def waiting_for(self, order_id) -> int:
        """How many requests of this process wait for this order now."""
        with self._lock:
            return len(self._waiters.get(str(order_id), ()))

    def _all_waiters(self) -> list[Waiter]:
        with self._lock:
            return [w for waiters in self._waiters.values() for w in waiters]

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self.connected = connected
        for waiter in self._all_waiters():
            waiter._listener_back() if connected else waiter._listener_away()

    def _run(self) -> None:
        while not self._stop.is_set():
            wrapper = connections.create_connection(self._using)  # this thread's own, outside Django's handler
            try:
                wrapper.ensure_connection()
                with wrapper.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                self._set_connected(True)
                self._listen(wrapper.connection)
            except (DatabaseError, psycopg2.Error, OSError) as exc:
                logger.warning("order status listener: connection lost, reconnecting", extra={"error": str(exc)})
            finally:
                self._set_connected(False)
                with contextlib.suppress(DatabaseError, psycopg2.Error):
                    wrapper.close()
            self._stop.wait(RECONNECT_S)

    def _listen(self, pg) -> None:
        while not self._stop.is_set():
            readable = select.select([pg, self._wake_r], [], [], 60.0)[0]
            if pg in readable:
                pg.poll()  # reads what arrived; raises if the server closed the connection
                arrived = [n.payload for n in pg.notifies]
                del pg.notifies[:]
                self._dispatch(arrived)
            elif not readable:
                with pg.cursor() as cursor:  # a quiet minute: make sure the connection is still there
                    cursor.execute("SELECT 1")

    def _dispatch(self, payloads: Iterable[str]) -> None:
        for payload in payloads:
            parsed = _parse(payload)
            if parsed is None:
                logger.warning("order status listener: malformed payload ignored", extra={"payload": payload[:200]})
                continue
            order_id, state = parsed
            with self._lock:
                waiters = list(self._waiters.get(order_id, ()))
            for waiter in waiters:
                waiter._hear(state)


_listener = StatusListener()


def listener() -> StatusListener:
    return _listener


def order_state_wait(*, order_id, settled: Callable[[str], bool], timeout_s: float) -> OrderState | None:
    """The order's state once `settled(status)` holds, or as it is when `timeout_s` has passed (None: no such order).

    Reads the state once after registering the waiter, then only when the listener asks it to (it was away) and,
    if a change may have gone unheard, at the end: never in a loop.
    """
    deadline = time.monotonic() + timeout_s
    with _listener.watching(order_id) as waiter:
        state = selectors.order_state_get(order_id=order_id)
        while state is not None and not settled(state.status):
            heard = waiter.next(max(0.0, deadline - time.monotonic()))
            if heard is None:  # the bound
                if not waiter.reliable:
                    state = selectors.order_state_get(order_id=order_id)
                break
            if heard is RECHECK:
                state = selectors.order_state_get(order_id=order_id)
            elif _progress(heard.status) >= _progress(state.status):
                state = heard
        return state
