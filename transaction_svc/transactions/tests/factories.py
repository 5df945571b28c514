"""Builders of order events and ledger rows for the tests (through the real services)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from common.events import Envelope
from transactions.models import Transaction
from transactions.services import transaction_record

_seq = itertools.count(1)


def fill_data(**overrides: Any) -> dict[str, Any]:
    """The data of an `order.filled` event as order_svc sends it (a BUY of 0.5 BTC at 30000 by default)."""
    n = next(_seq)
    data = {
        "fill_id": f"fill-{uuid.uuid4().hex[:12]}-{n}",
        "order_id": f"order-{uuid.uuid4().hex[:12]}",
        "user_id": str(uuid.uuid4()),
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "side": "BUY",
        "price": "30000.00",
        "qty": "0.5",
        "quote_qty": "15000",
        "fee": "0.0005",
        "fee_asset": "BTC",
        "status": "FILLED",
        "remaining_qty": "0",
        "executed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    data.update({k: (str(v) if isinstance(v, uuid.UUID | Decimal) else v) for k, v in overrides.items()})
    if isinstance(data["executed_at"], datetime):
        data["executed_at"] = data["executed_at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return data


def order_event(type_: str, **data: Any) -> Envelope:
    if type_ == "order.filled":
        payload = fill_data(**data)
    else:
        payload = {
            "order_id": f"order-{uuid.uuid4().hex[:12]}",
            "user_id": str(uuid.uuid4()),
            "symbol": "BTCUSDT",
            **({"status": "CANCELED"} if type_ == "order.cancelled" else {"reason": "insufficient balance"}),
            **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in data.items()},
        }
    return Envelope.new(type_, source="order_svc", subject=payload["order_id"], data=payload)


def record_fill(**overrides: Any) -> Transaction:
    """A fill booked through transaction_record, as the consumer books it."""
    data = fill_data(**overrides)
    record = transaction_record(
        event_id=str(uuid.uuid4()),
        fill_id=data["fill_id"],
        order_id=data["order_id"],
        user_id=uuid.UUID(data["user_id"]),
        symbol=data["symbol"],
        base_asset=data["base_asset"],
        quote_asset=data["quote_asset"],
        side=data["side"],
        price=Decimal(data["price"]),
        qty=Decimal(data["qty"]),
        quote_qty=Decimal(data["quote_qty"]),
        fee=Decimal(data["fee"]),
        fee_asset=data["fee_asset"],
        order_status=data["status"],
        executed_at=datetime.fromisoformat(data["executed_at"]),
        occurred_at=datetime.now(UTC),
        data=data,
    )
    assert record is not None
    return record
