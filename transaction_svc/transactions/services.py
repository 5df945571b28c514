"""Writes of transaction_svc: book a fill in the ledger, log order events, keep the month partitions ready."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction

from common.exceptions import ApplicationError
from common.outbox.services import publish
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
    """Book one fill: a ledger row, its event row and `transaction.recorded`, or nothing if already booked.

    The fill id is claimed in recorded_fills first (unpartitioned, so unique across every month); a
    fill already there, under whatever event id, makes this a no-op that returns None.
    """
    if side not in Side.values:
        raise ApplicationError(f"side must be BUY or SELL, not {side!r}", code="invalid_fill")
    price, qty, quote_qty = _amount("price", price), _amount("qty", qty), _amount("quote_qty", quote_qty)
    fee = _amount("fee", fee, allow_zero=True)
    executed_at, occurred_at = _utc("executed_at", executed_at), _utc("occurred_at", occurred_at)
    transaction_id = uuid.uuid4()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO recorded_fills (fill_id, transaction_id, executed_at, recorded_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (fill_id) DO NOTHING RETURNING fill_id",
                [fill_id, transaction_id, executed_at],
            )
            if cursor.fetchone() is None:
                logger.info("fill already recorded", extra={"fill_id": fill_id, "event_id": event_id})
                return None
        record = Transaction.objects.create(
            id=transaction_id,
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
            is_maker=is_maker,
            trade_id=trade_id,
            executed_at=executed_at,
        )
        TransactionEvent.objects.create(
            event_id=event_id,
            event_type=TransactionEventType.ORDER_FILLED,
            order_id=order_id,
            user_id=user_id,
            symbol=symbol,
            fill_id=fill_id,
            transaction_id=transaction_id,
            status=order_status,
            data=data,
            occurred_at=occurred_at,
        )
        publish(
            Topic.TRANSACTION_EVENTS,
            "transaction.recorded",
            str(user_id),
            {
                "transaction_id": str(transaction_id),
                "fill_id": fill_id,
                "order_id": order_id,
                "user_id": str(user_id),
                "symbol": symbol,
                "side": side,
                "price": decimal_str(price),
                "qty": decimal_str(qty),
                "quote_qty": decimal_str(quote_qty),
                "fee": decimal_str(fee),
                "fee_asset": fee_asset,
                "executed_at": executed_at,
            },
        )
    return record


# The unique keys that make a second copy of an order event a duplicate rather than an error.
_DUPLICATE_EVENT_KEYS = {
    "transaction_events_event_id_key",
    "transaction_events_one_end_per_order",
    "transaction_events_one_per_fill",
}


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
    if event_type == TransactionEventType.ORDER_FILLED or event_type not in TransactionEventType.values:
        raise ApplicationError(f"{event_type} is not an event recorded on its own", code="invalid_event")
    occurred_at = _utc("occurred_at", occurred_at)
    try:
        # The savepoint lets the database decide on duplicates (concurrent copies included) without
        # aborting the consumer's batch transaction.
        with transaction.atomic():
            return TransactionEvent.objects.create(
                event_id=event_id,
                event_type=event_type,
                order_id=order_id,
                user_id=user_id,
                symbol=symbol,
                status=status,
                reason=reason[:255],
                data=data,
                occurred_at=occurred_at,
            )
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) not in _DUPLICATE_EVENT_KEYS:
            raise
        logger.info("order event already recorded", extra={"order_id": order_id, "event_type": event_type})
        return None


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
