"""Cancel rules: open orders end CANCELED with order.cancelled; finished ones refuse with 400 and stay as they are."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from common.events import Envelope
from common.exceptions import ApplicationError
from common.outbox.models import OutboxMessage
from orders.handlers import handle_trades
from orders.models import Order, OrderEvent, Saga, SagaState
from orders.services import order_cancel, saga_reservation_confirm
from orders.tests.conftest import published
from orders.tests.factories import apply, open_order, place, trade, trade_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("symbols")]


def test_cancel_of_an_open_order_ends_it_and_tells_portfolio_to_release_through_order_cancelled(api, user_id):
    order = open_order(user_id)

    response = api.delete(f"/api/orders/{order.id}")

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.reason == "canceled by user"
    assert published("order.cancelled") == [
        {
            "order_id": str(order.id),
            "user_id": str(user_id),
            "symbol": "BTCUSDT",
            "status": "CANCELED",
            "reason": "canceled by user",
        }
    ]
    # order.cancelled follows the order's fills on order-events; a release command could overtake them
    assert published("portfolio.release_funds") == []


def test_cancel_of_a_partially_filled_order_keeps_its_fills(api, user_id):
    order = open_order(user_id, quantity=Decimal("0.02"))
    apply(trade(price="30000.00", qty="0.01"))

    response = api.delete(f"/api/orders/{order.id}")

    assert response.json()["status"] == "CANCELED" and response.json()["executedQty"] == "0.01000000"
    assert len(response.json()["fills"]) == 1


def test_cancel_while_reserving_compensates_the_saga_and_a_late_reservation_is_released_too(api, user_id):
    order = place(user_id)

    assert api.delete(f"/api/orders/{order.id}").status_code == 200

    saga = Saga.objects.get(order=order)
    assert saga.state == SagaState.COMPENSATED
    assert [r["reason"] for r in published("portfolio.release_funds")] == ["canceled"]
    outcome = saga_reservation_confirm(
        saga_id=str(saga.id), order_id=str(order.id), asset="USDT", amount=Decimal("300")
    )
    assert outcome == "released"
    assert Order.objects.get(id=order.id).status == "CANCELED"
    assert [r["reason"] for r in published("portfolio.release_funds")] == ["canceled", "late reservation"]


@pytest.mark.parametrize("final", ["FILLED", "CANCELED", "REJECTED", "EXPIRED"])
def test_cancel_of_a_finished_order_is_a_400_and_nothing_changes(api, user_id, final):
    order = open_order(user_id, quantity=Decimal("0.01"))
    if final == "FILLED":
        apply(trade(price="30000.00", qty="1"))
    else:
        Order.objects.filter(id=order.id).update(status=final)
    before = OutboxMessage.objects.count()

    response = api.delete(f"/api/orders/{order.id}")

    assert response.status_code == 400
    assert response.json() == {
        "code": "-2011",
        "message": f"Order is {final}: only an open order can be canceled.",
        "details": {"status": final},
    }
    assert Order.objects.get(id=order.id).status == final
    assert OutboxMessage.objects.count() == before


def test_the_admin_cancel_action_runs_the_cancel_and_reports_refusals(client):
    admin = User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    client.force_login(admin)
    open_one = open_order(price=Decimal("28000.00"))
    filled = open_order(quantity=Decimal("0.01"), price=Decimal("29000.00"))
    apply(trade(price="29000.00", qty="1"))  # crosses the 29000 bid only

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_orders", "_selected_action": [str(open_one.id), str(filled.id)]},
        follow=True,
    )

    assert response.status_code == 200
    assert Order.objects.get(id=open_one.id).status == "CANCELED"
    assert Order.objects.get(id=open_one.id).reason == "canceled by an operator"
    assert Order.objects.get(id=filled.id).status == "FILLED"
    assert "only an open order can be canceled" in response.content.decode()


def test_the_admin_pages_of_orders_events_and_sagas_render(client):
    client.force_login(User.objects.create_superuser("ops2", "ops2@example.com", "pw-for-tests-only"))
    order = open_order()

    for url in (
        "/admin/orders/order/",
        f"/admin/orders/order/{order.id}/change/",
        "/admin/orders/orderevent/",
        "/admin/orders/saga/",
        f"/admin/orders/saga/{order.saga.id}/change/",
        "/admin/orders/symbol/",
        "/admin/orders/fill/",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_a_cancel_holding_one_of_its_orders_and_fills_the_next_one():
    first = open_order(quantity=Decimal("0.01"))
    second = open_order(quantity=Decimal("0.01"))
    locked, release, filled = threading.Event(), threading.Event(), {}

    def cancel() -> None:
        try:
            with transaction.atomic():
                order_cancel(order_id=first.id)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def fill() -> None:
        try:
            filled["fills"] = apply(trade(price="29000.00", qty="0.01"))
        finally:
            connection.close()

    canceller, engine = threading.Thread(target=cancel), threading.Thread(target=fill)
    canceller.start()
    assert locked.wait(10)
    engine.start()
    _wait_for_a_lock_wait()
    release.set()
    canceller.join(10)
    engine.join(10)

    assert filled == {"fills": 1}
    assert Order.objects.get(id=first.id).status == "CANCELED" and not first.fills.exists()
    assert Order.objects.get(id=second.id).status == "FILLED"


# Which of the two takes the order's row lock first, how much the trade gives, and what each one did then.
RACES = [
    # the cancel first: the batch's FOR UPDATE re-reads the order after the commit, CANCELED, and skips it
    pytest.param(
        "cancel",
        "0.004",
        {"cancel": "CANCELED", "fills": 0},
        ("CANCELED", "0"),
        ["order.cancelled"],
        id="cancel-first-part-of-it-traded",
    ),
    pytest.param(
        "cancel",
        "0.01",
        {"cancel": "CANCELED", "fills": 0},
        ("CANCELED", "0"),
        ["order.cancelled"],
        id="cancel-first-all-of-it-traded",
    ),
    # the batch first: the cancel reads the order as the batch left it, and ends what remains
    pytest.param(
        "fill",
        "0.004",
        {"cancel": "CANCELED", "fills": 1},
        ("CANCELED", "0.004"),
        ["order.filled", "order.cancelled"],
        id="fill-first-part-of-it-traded",
    ),
    # ... or refuses, when nothing remains
    pytest.param(
        "fill",
        "0.01",
        {"cancel": "-2011", "fills": 1},
        ("FILLED", "0.01"),
        ["order.filled"],
        id="fill-first-all-of-it-traded",
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("first", "traded", "outcomes", "final", "history"), RACES)
def test_a_cancel_racing_a_fill_batch_lands_wholly_before_or_after_it(first, traded, outcomes, final, history):
    order = open_order(quantity=Decimal("0.01"), price=Decimal("30000.00"))  # reserves 300 USDT
    batch = [_trade_event(price="29000.00", qty=traded, trade_id=1)]
    held, release, done = threading.Event(), threading.Event(), {}

    def hold_if_first(who: str) -> None:
        if first == who:  # keep the row lock until the other one waits for it
            held.set()
            release.wait(10)

    def cancel() -> None:
        try:
            with transaction.atomic():
                done["cancel"] = _cancel(order)
                hold_if_first("cancel")
        finally:
            connection.close()

    def fill() -> None:
        try:
            with transaction.atomic():  # as the consumer runner holds a batch
                handle_trades(batch)
                done["fills"] = order.fills.count()
                hold_if_first("fill")
        finally:
            connection.close()

    threads = {"cancel": threading.Thread(target=cancel), "fill": threading.Thread(target=fill)}
    second = "fill" if first == "cancel" else "cancel"
    threads[first].start()
    assert held.wait(10)
    threads[second].start()
    _wait_for_a_lock_wait()
    release.set()
    for thread in threads.values():
        thread.join(10)

    assert done == outcomes
    order.refresh_from_db()
    assert (order.status, order.executed_qty) == (final[0], Decimal(final[1]))
    assert [e.type for e in _settling_events(order)] == history
    _assert_reservation_conserved(order, cancel=done["cancel"])


@pytest.mark.django_db(transaction=True)
def test_cancels_started_together_with_a_fill_batch_never_leave_an_order_half_cancelled_or_overspent():
    orders = [open_order(quantity=Decimal("0.01"), price=Decimal("30000.00")) for _ in range(4)]
    # crosses all four, in acceptance order: 0.01, 0.01, 0.005, nothing
    batch = [_trade_event(price="29000.00", qty="0.025", trade_id=1)]
    start = threading.Barrier(len(orders) + 1)
    cancels: dict[uuid.UUID, str] = {}
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            start.wait(10)
            with transaction.atomic():
                work()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def cancel(order: Order) -> None:
        cancels[order.id] = _cancel(order)

    threads = [threading.Thread(target=run, args=(lambda o=o: cancel(o),)) for o in orders]
    threads.append(threading.Thread(target=run, args=(lambda: handle_trades(batch),)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []  # a deadlock would be an error of one of them
    for order in orders:
        order.refresh_from_db()
        assert order.status in ("CANCELED", "FILLED"), order.status
        _assert_reservation_conserved(order, cancel=cancels[order.id])
    filled = sum((Decimal(e.data["qty"]) for e in OrderEvent.objects.filter(type="order.filled")), start=Decimal(0))
    assert filled <= Decimal("0.025")  # the trade's quantity, shared


def _trade_event(*, price: str, qty: str, trade_id: int) -> Envelope:
    data = trade_data(price=price, qty=qty, trade_id=trade_id)
    return Envelope.new("trade", source="feed", subject="BTCUSDT", data=data)


def _cancel(order: Order) -> str:
    """What a cancel answered: the status it left, or the code it refused with."""
    try:
        return order_cancel(order_id=order.id, user_id=order.user_id).status
    except ApplicationError as exc:
        return exc.code


def _settling_events(order: Order) -> list[OrderEvent]:
    """The order's events portfolio_svc settles and releases by, in the order it reads them."""
    return list(order.events.filter(type__in=["order.filled", "order.cancelled"]).order_by("id"))


def _assert_reservation_conserved(order: Order, *, cancel: str) -> None:
    """What the events say was filled plus what order.cancelled releases is the reservation: no more, no less."""
    events = _settling_events(order)
    filled = [e.data for e in events if e.type == "order.filled"]
    cancelled = [e.data for e in events if e.type == "order.cancelled"]
    assert [e["fill_id"] for e in filled] == [str(f.id) for f in order.fills.order_by("trade_id")]
    filled_qty = sum((Decimal(e["qty"]) for e in filled), start=Decimal(0))
    spent = sum((Decimal(e["quote_qty"]) for e in filled), start=Decimal(0))
    assert (filled_qty, spent) == (order.executed_qty, order.cumulative_quote_qty)
    assert filled_qty <= order.quantity and spent <= order.reserved_amount
    if order.status == "FILLED":
        # nothing left to release, and no order.cancelled that would release it twice
        assert (cancel, cancelled) == ("-2011", [])
        assert filled[-1]["status"] == "FILLED" and spent == order.reserved_amount
    else:
        assert order.status == "CANCELED" and cancel == "CANCELED"
        # last: portfolio_svc reads it after every fill, so it releases only what no fill settles
        assert len(cancelled) == 1 and events[-1].type == "order.cancelled"
        assert all(e["status"] == "PARTIALLY_FILLED" for e in filled)
        released = order.reserved_amount - spent  # what portfolio_svc still holds locked when it reads the cancel
        assert released == (order.quantity - filled_qty) * order.price
        assert released > 0


def _wait_for_a_lock_wait(timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("the fill engine never waited for the cancel's lock")
