"""The set-based consumers: a constant number of statements per batch, and the same effects as one event at a time.

The batch handlers are called the way the runner calls them: inside one transaction, with the fresh events of
a batch in offset order. Statements are counted inside that transaction (the inbox claim is the runner's own).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from common.outbox.models import OutboxMessage
from portfolios.handlers import handle_order_events, handle_portfolio_commands, handle_trades
from portfolios.models import Balance, LedgerEntry, Price, Reservation
from portfolios.services import assets_cache_clear
from portfolios.services.balances import assets_known
from portfolios.tests.factories import (
    fill,
    order_cancelled,
    order_filled,
    portfolio_with,
    release_command,
    reserve,
    reserve_command,
    trade,
)

pytestmark = pytest.mark.django_db

# portfolio-commands: lock reservations, read default portfolios, lock balances, update balances, insert ledger
# entries, insert new reservations, update changed reservations, insert the outbox rows.
COMMANDS_STATEMENTS = 8
# order-events: lock reservations, read settled fills, create missing balances, lock balances, update balances,
# update reservations, insert settlements, insert ledger entries, insert the outbox rows.
ORDER_EVENTS_STATEMENTS = 9


def _statements(handler, envelopes) -> int:
    assets_known(["USDT"])  # the per-process catalogue cache is filled once, not per batch
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        handler(envelopes)
    return len(ctx.captured_queries)


def _users(n: int, **funds: str) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(n)]
    for user in users:
        portfolio_with(user, **funds)
    return users


def _tag(user: uuid.UUID) -> str:
    return user.hex[:10]


def _holdings(user: uuid.UUID) -> dict[str, tuple[Decimal, Decimal]]:
    return {b.asset_id: (b.available, b.locked) for b in Balance.objects.filter(portfolio__user_id=user)}


# --- portfolio-commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 100])
def test_reserve_commands_take_the_same_statements_for_1_and_100(n):
    users = _users(n, USDT="1000")

    count = _statements(handle_portfolio_commands, [reserve_command(u, f"o-{_tag(u)}", "10") for u in users])

    assert count == COMMANDS_STATEMENTS - 1  # nothing existing to update
    assert Reservation.objects.filter(state="ACTIVE").count() == n
    assert all(_holdings(u) == {"USDT": (Decimal(990), Decimal(10))} for u in users)


def _command_mix(user: uuid.UUID) -> list:
    """Every kind of command for one user, whose open reservation `open-<tag>` holds 100 of 1000 USDT."""
    t = _tag(user)
    return [
        reserve_command(user, f"a-{t}", "600"),
        reserve_command(user, f"b-{t}", "600"),  # sees what a- took: insufficient
        release_command(user, f"open-{t}"),
        reserve_command(user, f"c-{t}", "50"),
        release_command(user, f"c-{t}"),  # reserved and released in one batch
        release_command(user, f"z-{t}"),  # before any reservation
        reserve_command(user, f"z-{t}", "10"),  # a late reserve locks nothing
        reserve_command(user, f"a-{t}", "600"),  # repeated: the same answer, nothing moves
        reserve_command(user, f"e-{t}", "0.000000000000000000001"),  # more decimals than stored: invalid
    ]


@pytest.mark.parametrize("n", [1, 100])
def test_a_mixed_batch_of_commands_takes_the_same_statements_for_1_and_100_users(n):
    users = _users(n, USDT="1000")
    for user in users:
        reserve(user, "USDT", "100", order_id=f"open-{_tag(user)}")

    count = _statements(handle_portfolio_commands, [e for u in users for e in _command_mix(u)])

    assert count == COMMANDS_STATEMENTS
    for user in users:
        assert _holdings(user) == {"USDT": (Decimal(400), Decimal(600))}


def _outcome(user: uuid.UUID) -> dict:
    """What the service holds and said about one user, with the user's ids replaced by placeholders."""
    t, portfolio_id = _tag(user), str(Balance.objects.filter(portfolio__user_id=user).first().portfolio_id)
    reservations = sorted(
        (r.order_id.replace(t, "T"), r.state, r.amount, r.consumed, r.released, r.reason)
        for r in Reservation.objects.filter(user_id=user)
    )
    ledger = [
        (e.kind, e.asset_id, e.amount, e.available_delta, e.locked_delta, e.reference.replace(t, "T"))
        for e in LedgerEntry.objects.filter(user_id=user).order_by("id")
    ]
    answers = []
    for row in OutboxMessage.objects.filter(key=str(user)).order_by("id"):
        text = json.dumps(json.loads(bytes(row.payload))["data"], sort_keys=True)
        answers.append((row.event_type, text.replace(str(user), "U").replace(portfolio_id, "P").replace(t, "T")))
    return {"holdings": _holdings(user), "reservations": reservations, "ledger": ledger, "answers": answers}


def test_a_batch_of_commands_ends_exactly_like_the_same_commands_one_at_a_time():
    batched, alone = _users(2, USDT="1000")
    for user in (batched, alone):
        reserve(user, "USDT", "100", order_id=f"open-{_tag(user)}")
    unknown_asset = [reserve_command(u, f"d-{_tag(u)}", "1", asset="DOGE") for u in (batched, alone)]

    with transaction.atomic():
        handle_portfolio_commands([*_command_mix(batched), unknown_asset[0]])
    for envelope in [*_command_mix(alone), unknown_asset[1]]:
        with transaction.atomic():
            handle_portfolio_commands([envelope])

    assert _outcome(batched) == _outcome(alone)
    assert [a[0] for a in _outcome(batched)["answers"][2:]] == [
        "balance.reserved",
        "balance.reservation_failed",
        "balance.released",
        "balance.reserved",
        "balance.released",
        "balance.released",
        "balance.reservation_failed",
        "balance.reserved",
        "balance.reservation_failed",
        "balance.reservation_failed",
    ]
    assert [r[-1] for r in _outcome(batched)["reservations"]] == [
        "",  # a-: active
        "insufficient_funds",
        "",  # c-: released
        "unknown_asset",
        "invalid_amount",
        "",  # open-: released
        "saga timed out",  # z-: released before any reservation
    ]


# --- order-events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 100])
def test_fills_that_finish_their_orders_take_the_same_statements_for_1_and_100(n):
    users = _users(n, USDT="1000")
    for user in users:
        reserve(user, "USDT", "300", order_id=f"buy-{_tag(user)}")
    fills = [
        order_filled(u, f"buy-{_tag(u)}", f"f-{_tag(u)}", qty="0.002", price="100000", status="FILLED") for u in users
    ]

    count = _statements(handle_order_events, fills)

    assert count == ORDER_EVENTS_STATEMENTS
    for user in users:
        assert _holdings(user) == {"USDT": (Decimal(800), Decimal(0)), "BTC": (Decimal("0.002"), Decimal(0))}


def _order_event_mix(user: uuid.UUID) -> list:
    """Fills and closes for one user: buy- holds 300 USDT with fill f0- settled (100), buy2- holds 100."""
    t = _tag(user)
    return [
        order_filled(user, f"buy-{t}", f"f1-{t}", qty="0.001", price="100000", status="PARTIALLY_FILLED"),
        order_filled(user, f"buy-{t}", f"f1-{t}", qty="0.001", price="100000", status="PARTIALLY_FILLED"),  # again
        order_filled(user, f"buy-{t}", f"f0-{t}", qty="0.001", price="100000", status="PARTIALLY_FILLED"),  # settled
        order_filled(user, f"buy-{t}", f"f2-{t}", qty="0.0005", price="100000", status="FILLED", fee="0.0000005"),
        order_cancelled(user, f"buy2-{t}"),
        order_cancelled(user, f"gone-{t}"),  # no reservation: nothing to release
        order_cancelled(user, f"buy-{t}"),  # closed by its last fill already
    ]


def _order_event_setup(users: list[uuid.UUID]) -> None:
    for user in users:
        buy = reserve(user, "USDT", "300", order_id=f"buy-{_tag(user)}")
        reserve(user, "USDT", "100", order_id=f"buy2-{_tag(user)}")
        fill(
            buy, side="BUY", qty="0.001", price="100000", fee="0", status="PARTIALLY_FILLED", fill_id=f"f0-{_tag(user)}"
        )


@pytest.mark.parametrize("n", [1, 100])
def test_a_mixed_batch_of_order_events_takes_the_same_statements_for_1_and_100_users(n):
    users = _users(n, USDT="1000")
    _order_event_setup(users)

    count = _statements(handle_order_events, [e for u in users for e in _order_event_mix(u)])

    assert count == ORDER_EVENTS_STATEMENTS
    for user in users:
        assert _holdings(user) == {"USDT": (Decimal(750), Decimal(0)), "BTC": (Decimal("0.0024995"), Decimal(0))}


@pytest.mark.parametrize("n", [1, 100])
def test_cancellations_take_the_same_statements_for_1_and_100(n):
    users = _users(n, USDT="1000")
    for user in users:
        reserve(user, "USDT", "300", order_id=f"buy-{_tag(user)}")

    count = _statements(handle_order_events, [order_cancelled(u, f"buy-{_tag(u)}") for u in users])

    # No settled fills to read, no balance to create, no settlement to insert.
    assert count == ORDER_EVENTS_STATEMENTS - 3
    assert all(_holdings(u) == {"USDT": (Decimal(1000), Decimal(0))} for u in users)


def test_a_batch_of_order_events_ends_exactly_like_the_same_events_one_at_a_time():
    batched, alone = _users(2, USDT="1000")
    _order_event_setup([batched, alone])

    with transaction.atomic():
        handle_order_events(_order_event_mix(batched))
    for envelope in _order_event_mix(alone):
        with transaction.atomic():
            handle_order_events([envelope])

    outcome = _outcome(batched)
    assert outcome == _outcome(alone)
    settled_then = [a[0] for a in outcome["answers"] if a[0] in ("balance.settled", "balance.released")]
    # f0 (setup), f1, f2, the leftover of buy-, buy2-'s release: the repeated fills and the extra closes say nothing.
    assert settled_then == ["balance.settled"] * 3 + ["balance.released"] * 2


def test_a_fill_twice_in_one_batch_settles_once():
    (user,) = _users(1, USDT="1000")
    reserve(user, "USDT", "300", order_id="buy-x")
    twice = order_filled(user, "buy-x", "f-x", qty="0.001", price="100000", status="PARTIALLY_FILLED")

    with transaction.atomic():
        handle_order_events([twice, order_filled(user, "buy-x", "f-x", qty="0.001", price="100000", status="FILLED")])

    assert _holdings(user) == {"USDT": (Decimal(700), Decimal(200)), "BTC": (Decimal("0.001"), Decimal(0))}
    assert LedgerEntry.objects.filter(kind="FILL_CREDIT").count() == 1
    assert OutboxMessage.objects.filter(event_type="balance.settled").count() == 1


# --- market-data ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 100])
def test_trades_take_one_statement_for_1_and_100(n):
    trades = [trade(("BTCUSDT", "ETHUSDT", "BNBUSDT")[i % 3], i, f"{100 + i}", 1_700_000_000_000 + i) for i in range(n)]

    assert _statements(handle_trades, trades) == 1
    assert Price.objects.count() == min(n, 3)


def test_the_asset_cache_is_read_once_and_again_only_for_a_code_it_lacks():
    assets_cache_clear()
    with CaptureQueriesContext(connection) as first:
        assert assets_known(["USDT", "BTC"]) == {"USDT", "BTC"}
    with CaptureQueriesContext(connection) as again:
        assert assets_known(["ETH"]) == {"ETH"}
    with CaptureQueriesContext(connection) as unknown:
        assert assets_known(["DOGE", "BTC"]) == {"BTC"}

    assert (len(first), len(again), len(unknown)) == (1, 0, 1)
