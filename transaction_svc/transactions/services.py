"""Writes of transaction_svc: book a fill in the ledger, log order events, keep the month partitions ready."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from common.events import Envelope
from common.exceptions import ApplicationError
from common.outbox.services import Outgoing, publish_many
from common.topics import Topic
from transactions.models import AMOUNT, Side, Transaction, TransactionEvent, TransactionEventType
from transactions.partitions import DEFAULT_PARTITION, PARENT, Month, create_partition_sql
from transactions.selectors import default_partition_rows

logger = logging.getLogger(__name__)

# Serialises partition maintenance between beat, the command and migrations on one database.
PARTITION_LOCK_KEY = 0x7472616E  # "tran"


def decimal_str(value: Decimal) -> str:
    """The one text form of an amount in this service's JSON and CSV: plain digits, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"


def _amount(name: str, value: Decimal, *, allow_zero: bool = False) -> Decimal:
    """An amount that fits NUMERIC(38, 18) exactly; the database would otherwise round it silently."""
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise ApplicationError(f"{name} must be {'non-negative' if allow_zero else 'positive'}", code="invalid_fill")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT["decimal_places"]:
        raise ApplicationError(f"{name} has more than 18 decimal places", code="invalid_fill")
    if value.adjusted() >= AMOUNT["max_digits"] - AMOUNT["decimal_places"]:
        raise ApplicationError(f"{name} is too large", code="invalid_fill")
    return value


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ApplicationError(f"{name} must carry a time zone", code="invalid_fill")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class FillToBook:
    """An `order.filled` to book in the ledger (values parsed; checked by order_events_record)."""

    event_id: str
    fill_id: str
    order_id: str
    user_id: uuid.UUID
    symbol: str
    base_asset: str
    quote_asset: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    order_status: str
    executed_at: datetime
    occurred_at: datetime
    data: dict[str, Any]
    is_maker: bool | None = None
    trade_id: int | None = None
    cause: Envelope | None = None  # the event this answers: transaction.recorded continues its chain and trace


@dataclass(frozen=True)
class OrderEventToLog:
    """An order event that books nothing (cancelled, rejected), to log once per order."""

    event_id: str
    event_type: str
    order_id: str
    user_id: uuid.UUID
    symbol: str
    data: dict[str, Any]
    occurred_at: datetime
    status: str = ""
    reason: str = ""


@dataclass
class RecordedEvents:
    """What order_events_record wrote: the new ledger rows and the new event-log rows, in the given order."""

    transactions: list[Transaction] = field(default_factory=list)
    events: list[TransactionEvent] = field(default_factory=list)


# The unique keys that make a second copy of an order event a duplicate rather than an error. Every unique
# key of transaction_events is one of these (a test compares them with the catalog), which is what lets the
# event-log INSERT say ON CONFLICT DO NOTHING without naming one.
_DUPLICATE_EVENT_KEYS = {
    "transaction_events_event_id_key",
    "transaction_events_one_end_per_order",
    "transaction_events_one_per_fill",
}

_CLAIM_FILLS = (
    "INSERT INTO recorded_fills (fill_id, transaction_id, executed_at, recorded_at) "
    "SELECT f, t, e, now() FROM unnest(%s::text[], %s::uuid[], %s::timestamptz[]) AS u(f, t, e) "
    # One order of unique-key locks for every batch, so two batches claiming the same fills never deadlock.
    "ORDER BY f ON CONFLICT (fill_id) DO NOTHING RETURNING fill_id"
)
_LOG_EVENTS = (
    "INSERT INTO transaction_events (event_id, event_type, order_id, user_id, symbol, fill_id, transaction_id, "
    "status, reason, data, occurred_at, recorded_at) "
    "SELECT e, t, o, usr, s, f, tx, st, r, d::jsonb, oc, now() FROM unnest(%s::text[], %s::text[], %s::text[], "
    "%s::uuid[], %s::text[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::timestamptz[]) "
    "WITH ORDINALITY AS u(e, t, o, usr, s, f, tx, st, r, d, oc, n) "
    # Offset order, so the log's ids follow the events' order as they did when logged one by one.
    "ORDER BY n ON CONFLICT DO NOTHING RETURNING id, event_id, recorded_at"
)


def order_events_record(events: Sequence[FillToBook | OrderEventToLog]) -> RecordedEvents:
    """Book the fills and log the order events of a batch, set-based: at most four statements whatever its size.

    Every event is checked first (an ApplicationError names the first bad one, and nothing is written). Then:
    one INSERT claims the fill ids in recorded_fills (unpartitioned, so unique across every month; a fill
    already there, under whatever event id, or twice in the batch, is booked once), one INSERT adds the
    ledger rows (the partitioned parent routes each to its month, or to the default partition), one INSERT
    logs the events (a duplicate by any of _DUPLICATE_EVENT_KEYS is skipped), and one publish_many emits
    `transaction.recorded` per booked fill. Runs in the caller's transaction (a consumer's batch) without a
    savepoint, or in its own.
    """
    for event in events:
        _check(event)
    with transaction.atomic(savepoint=False):
        booked = _claim_fills([e for e in events if isinstance(e, FillToBook)])
        result = RecordedEvents()
        result.transactions = Transaction.objects.bulk_create([row for _, row in booked.values()]) if booked else []
        result.events = _log(events, booked)
        publish_many([_recorded(fill, row) for fill, row in booked.values()])
    return result


def _check(event: FillToBook | OrderEventToLog) -> None:
    if isinstance(event, OrderEventToLog):
        if event.event_type == TransactionEventType.ORDER_FILLED or event.event_type not in TransactionEventType.values:
            raise ApplicationError(f"{event.event_type} is not an event recorded on its own", code="invalid_event")
        _utc("occurred_at", event.occurred_at)
        return
    if event.side not in Side.values:
        raise ApplicationError(f"side must be BUY or SELL, not {event.side!r}", code="invalid_fill")
    _amount("price", event.price)
    _amount("qty", event.qty)
    _amount("quote_qty", event.quote_qty)
    _amount("fee", event.fee, allow_zero=True)
    _utc("executed_at", event.executed_at)
    _utc("occurred_at", event.occurred_at)


def _claim_fills(fills: list[FillToBook]) -> dict[str, tuple[FillToBook, Transaction]]:
    """Claim each fill id once; the fills this batch books, by event id, in the batch's order."""
    first: dict[str, tuple[FillToBook, Transaction]] = {}
    for fill in fills:
        if fill.fill_id in first:
            logger.info("fill already recorded", extra={"fill_id": fill.fill_id, "event_id": fill.event_id})
            continue
        first[fill.fill_id] = (fill, _ledger_row(fill))
    if not first:
        return {}
    rows = [row for _, row in first.values()]
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_FILLS,
            [[r.fill_id for r in rows], [str(r.id) for r in rows], [r.executed_at for r in rows]],
        )
        claimed = {fill_id for (fill_id,) in cursor.fetchall()}
    booked = {}
    for fill_id, (fill, row) in first.items():
        if fill_id in claimed:
            booked[fill.event_id] = (fill, row)
        else:
            logger.info("fill already recorded", extra={"fill_id": fill_id, "event_id": fill.event_id})
    return booked


def _ledger_row(fill: FillToBook) -> Transaction:
    return Transaction(
        id=uuid.uuid4(),
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        user_id=fill.user_id,
        symbol=fill.symbol,
        base_asset=fill.base_asset,
        quote_asset=fill.quote_asset,
        side=fill.side,
        price=fill.price,
        qty=fill.qty,
        quote_qty=fill.quote_qty,
        fee=fill.fee,
        fee_asset=fill.fee_asset,
        order_status=fill.order_status,
        is_maker=fill.is_maker,
        trade_id=fill.trade_id,
        executed_at=fill.executed_at.astimezone(UTC),
    )


def _log(
    events: Sequence[FillToBook | OrderEventToLog], booked: dict[str, tuple[FillToBook, Transaction]]
) -> list[TransactionEvent]:
    """Log the booked fills and every order event that books nothing; duplicates of logged ones drop out."""
    rows = []
    for event in events:
        if isinstance(event, FillToBook):
            if event.event_id not in booked:
                continue  # its fill is booked already, and logged with the event that booked it
            ledger = booked[event.event_id][1]
            rows.append(
                TransactionEvent(
                    event_id=event.event_id,
                    event_type=TransactionEventType.ORDER_FILLED,
                    order_id=event.order_id,
                    user_id=event.user_id,
                    symbol=event.symbol,
                    fill_id=event.fill_id,
                    transaction_id=ledger.id,
                    status=event.order_status,
                    data=event.data,
                    occurred_at=event.occurred_at.astimezone(UTC),
                )
            )
        else:
            rows.append(
                TransactionEvent(
                    event_id=event.event_id,
                    event_type=event.event_type,
                    order_id=event.order_id,
                    user_id=event.user_id,
                    symbol=event.symbol,
                    status=event.status,
                    reason=event.reason[:255],
                    data=event.data,
                    occurred_at=event.occurred_at.astimezone(UTC),
                )
            )
    if not rows:
        return []
    columns = [
        [r.event_id for r in rows],
        [str(r.event_type) for r in rows],
        [r.order_id for r in rows],
        [str(r.user_id) for r in rows],
        [r.symbol for r in rows],
        [r.fill_id for r in rows],
        [None if r.transaction_id is None else str(r.transaction_id) for r in rows],
        [r.status for r in rows],
        [r.reason for r in rows],
        [json.dumps(r.data) for r in rows],
        [r.occurred_at for r in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_LOG_EVENTS, columns)
        inserted = {event_id: (pk, recorded_at) for pk, event_id, recorded_at in cursor.fetchall()}
    logged = []
    for row in rows:
        if row.event_id not in inserted:
            if row.fill_id is not None:
                # The fill was claimed just now, so its event cannot be logged yet: this event id is reused.
                raise ApplicationError(
                    f"event {row.event_id} of fill {row.fill_id} conflicts with an event logged before",
                    code="conflicting_event",
                )
            logger.info("order event already recorded", extra={"order_id": row.order_id, "event_type": row.event_type})
            continue
        row.pk, row.recorded_at = inserted[row.event_id]
        row._state.adding = False  # it is in the database now, as create() would leave it
        logged.append(row)
    return logged


def _recorded(fill: FillToBook, row: Transaction) -> Outgoing:
    return Outgoing(
        topic=Topic.TRANSACTION_EVENTS,
        type="transaction.recorded",
        key=str(row.user_id),
        data={
            "transaction_id": str(row.id),
            "fill_id": row.fill_id,
            "order_id": row.order_id,
            "user_id": str(row.user_id),
            "symbol": row.symbol,
            "side": row.side,
            "price": decimal_str(row.price),
            "qty": decimal_str(row.qty),
            "quote_qty": decimal_str(row.quote_qty),
            "fee": decimal_str(row.fee),
            "fee_asset": row.fee_asset,
            "executed_at": row.executed_at,
        },
        cause=fill.cause,
    )


def transaction_record(
    *,
    event_id: str,
    fill_id: str,
    order_id: str,
    user_id: uuid.UUID,
    symbol: str,
    base_asset: str,
    quote_asset: str,
    side: str,
    price: Decimal,
    qty: Decimal,
    quote_qty: Decimal,
    fee: Decimal,
    fee_asset: str,
    order_status: str,
    executed_at: datetime,
    occurred_at: datetime,
    data: dict[str, Any],
    is_maker: bool | None = None,
    trade_id: int | None = None,
) -> Transaction | None:
    """Book one fill: a ledger row, its event row and `transaction.recorded`, or nothing (None) if already booked."""
    fill = FillToBook(
        event_id=event_id,
        fill_id=fill_id,
        order_id=order_id,
        user_id=user_id,
        symbol=symbol,
        base_asset=base_asset,
        quote_asset=quote_asset,
        side=side,
        price=price,
        qty=qty,
        quote_qty=quote_qty,
        fee=fee,
        fee_asset=fee_asset,
        order_status=order_status,
        executed_at=executed_at,
        occurred_at=occurred_at,
        data=data,
        is_maker=is_maker,
        trade_id=trade_id,
    )
    recorded = order_events_record([fill]).transactions
    return recorded[0] if recorded else None


def transaction_event_record(
    *,
    event_id: str,
    event_type: str,
    order_id: str,
    user_id: uuid.UUID,
    symbol: str,
    status: str = "",
    reason: str = "",
    data: dict[str, Any],
    occurred_at: datetime,
) -> TransactionEvent | None:
    """Log an order event that books nothing (cancelled, rejected); None if this order's event is logged."""
    event = OrderEventToLog(
        event_id=event_id,
        event_type=event_type,
        order_id=order_id,
        user_id=user_id,
        symbol=symbol,
        status=status,
        reason=reason,
        data=data,
        occurred_at=occurred_at,
    )
    logged = order_events_record([event]).events
    return logged[0] if logged else None


def partitions_ensure(*, months_ahead: int, months_before: int = 1, now: datetime | None = None) -> list[str]:
    """Create the month partitions from `months_before` months ago to `months_ahead` months ahead.

    Returns the names created (none when all exist). Rows that had landed in the default partition for
    a month created here move into it, in the same transaction.
    """
    current = Month.of(now or datetime.now(UTC))
    months = [current.plus(offset) for offset in range(-months_before, months_ahead + 1)]
    return _partitions_create(months)


def partitions_adopt_default() -> list[str]:
    """Give every month with rows in the default partition a partition of its own and move the rows there."""
    return _partitions_create(sorted(default_partition_rows()))


def _partitions_create(months: list[Month]) -> list[str]:
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
        for month in months:
            cursor.execute("SELECT to_regclass(%s)", [month.partition])
            if cursor.fetchone()[0] is not None:
                continue
            moved = _create_with_strays(cursor, month)
            created.append(month.partition)
            logger.info("ledger partition created", extra={"partition": month.partition, "moved_rows": moved})
    return created


def _create_with_strays(cursor, month: Month) -> int:
    """Create a month's partition; rows of that month in the default partition would block it, so move them."""
    bounds = [month.start, month.end]
    cursor.execute(
        f'SELECT count(*) FROM "{DEFAULT_PARTITION}" WHERE executed_at >= %s AND executed_at < %s',  # noqa: S608
        bounds,
    )
    strays = cursor.fetchone()[0]
    if strays:
        cursor.execute(f'CREATE TEMP TABLE moving_transactions (LIKE "{PARENT}") ON COMMIT DROP')
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE executed_at >= %s AND executed_at < %s "  # noqa: S608
            "RETURNING *) INSERT INTO moving_transactions SELECT * FROM moved",
            bounds,
        )
    cursor.execute(create_partition_sql(month))
    if strays:
        cursor.execute(f'INSERT INTO "{PARENT}" SELECT * FROM moving_transactions')  # noqa: S608
        cursor.execute("DROP TABLE moving_transactions")
    return strays
