"""The platform's event contracts: every event type, its topic, its version and the schema of its data.

Amounts are decimal strings, ids are strings, times are ISO 8601 UTC (or epoch milliseconds where the
Binance wire format says so). Extra keys are allowed so a producer can add a field before its consumers
know it (a breaking change gets a new version instead).
"""

from __future__ import annotations

from typing import Any

from common.events import register
from common.topics import Topic

DECIMAL = {"type": "string", "pattern": r"^-?\d{1,40}(\.\d{1,40})?$"}
POSITIVE_DECIMAL = {"type": "string", "pattern": r"^\d{1,40}(\.\d{1,40})?$"}
ID = {"type": "string", "minLength": 1, "maxLength": 64}
TEXT = {"type": "string", "minLength": 1, "maxLength": 255}
TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
SIDE = {"enum": ["BUY", "SELL"]}
ORDER_STATUS = {"enum": ["PENDING_NEW", "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"]}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": True,
    }


# user-events (key: user id)
register(
    "user.registered",
    topic=Topic.USER_EVENTS,
    schema=obj({"user_id": ID, "email": TEXT, "display_name": {"type": "string", "maxLength": 150}}),
)
register("user.logged_in", topic=Topic.USER_EVENTS, schema=obj({"user_id": ID}))
register(
    "user.updated",
    topic=Topic.USER_EVENTS,
    schema=obj({"user_id": ID, "changed": {"type": "array", "items": {"type": "string"}}}),
)
register("user.deactivated", topic=Topic.USER_EVENTS, schema=obj({"user_id": ID}))

# portfolio-events (key: portfolio id)
register(
    "portfolio.created",
    topic=Topic.PORTFOLIO_EVENTS,
    schema=obj({"portfolio_id": ID, "user_id": ID, "name": TEXT, "is_default": {"type": "boolean"}}),
)
register("portfolio.updated", topic=Topic.PORTFOLIO_EVENTS, schema=obj({"portfolio_id": ID, "user_id": ID}))

# portfolio-commands (key: user id): order_svc's saga asks, portfolio_svc answers on balance-events.
register(
    "portfolio.reserve_funds",
    topic=Topic.PORTFOLIO_COMMANDS,
    schema=obj({"order_id": ID, "saga_id": ID, "user_id": ID, "asset": TEXT, "amount": POSITIVE_DECIMAL}),
)
register(
    "portfolio.release_funds",
    topic=Topic.PORTFOLIO_COMMANDS,
    schema=obj({"order_id": ID, "saga_id": ID, "user_id": ID}, {"reason": TEXT}),
)

# balance-events (key: user id)
register(
    "balance.reserved",
    topic=Topic.BALANCE_EVENTS,
    schema=obj({"order_id": ID, "saga_id": ID, "user_id": ID, "portfolio_id": ID, "asset": TEXT, "amount": DECIMAL}),
)
register(
    "balance.reservation_failed",
    topic=Topic.BALANCE_EVENTS,
    schema=obj({"order_id": ID, "saga_id": ID, "user_id": ID, "asset": TEXT, "amount": DECIMAL, "reason": TEXT}),
)
register(
    "balance.released",
    topic=Topic.BALANCE_EVENTS,
    schema=obj({"order_id": ID, "saga_id": ID, "user_id": ID, "asset": TEXT, "amount": DECIMAL}),
)
register(
    "balance.settled",
    topic=Topic.BALANCE_EVENTS,
    schema=obj(
        {
            "fill_id": ID,
            "order_id": ID,
            "user_id": ID,
            "portfolio_id": ID,
            "debit_asset": TEXT,
            "debit_amount": DECIMAL,
            "credit_asset": TEXT,
            "credit_amount": DECIMAL,
            "fee_asset": TEXT,
            "fee": DECIMAL,
        },
        {"released_amount": DECIMAL},
    ),
)
register(
    "balance.credited",
    topic=Topic.BALANCE_EVENTS,
    schema=obj({"user_id": ID, "portfolio_id": ID, "asset": TEXT, "amount": POSITIVE_DECIMAL, "reason": TEXT}),
)

# order-events (key: order id)
register(
    "order.created",
    topic=Topic.ORDER_EVENTS,
    schema=obj(
        {
            "order_id": ID,
            "user_id": ID,
            "symbol": TEXT,
            "side": SIDE,
            "type": {"enum": ["LIMIT", "MARKET"]},
            "client_order_id": TEXT,
        },
        {
            "time_in_force": {"enum": ["GTC", "IOC", "FOK", None]},
            "quantity": {"anyOf": [POSITIVE_DECIMAL, {"type": "null"}]},
            "price": {"anyOf": [POSITIVE_DECIMAL, {"type": "null"}]},
            "quote_order_qty": {"anyOf": [POSITIVE_DECIMAL, {"type": "null"}]},
        },
    ),
)
register(
    "order.accepted",
    topic=Topic.ORDER_EVENTS,
    schema=obj({"order_id": ID, "user_id": ID, "symbol": TEXT, "status": ORDER_STATUS}),
)
register(
    "order.rejected",
    topic=Topic.ORDER_EVENTS,
    schema=obj({"order_id": ID, "user_id": ID, "symbol": TEXT, "reason": TEXT}),
)
register(
    "order.filled",
    topic=Topic.ORDER_EVENTS,
    schema=obj(
        {
            "fill_id": ID,
            "order_id": ID,
            "user_id": ID,
            "symbol": TEXT,
            "base_asset": TEXT,
            "quote_asset": TEXT,
            "side": SIDE,
            "price": POSITIVE_DECIMAL,
            "qty": POSITIVE_DECIMAL,
            "quote_qty": POSITIVE_DECIMAL,
            "fee": POSITIVE_DECIMAL,
            "fee_asset": TEXT,
            "status": ORDER_STATUS,
            "remaining_qty": POSITIVE_DECIMAL,
            "executed_at": TIME,
        },
        {"is_maker": {"type": "boolean"}, "trade_id": {"type": "integer"}},
    ),
)
register(
    "order.cancelled",
    topic=Topic.ORDER_EVENTS,
    # status CANCELED (the user or an operator) or EXPIRED (IOC/FOK remainder, MARKET without a price).
    schema=obj(
        {"order_id": ID, "user_id": ID, "symbol": TEXT, "status": {"enum": ["CANCELED", "EXPIRED"]}},
        {"reason": TEXT},
    ),
)

# transaction-events (key: user id)
register(
    "transaction.recorded",
    topic=Topic.TRANSACTION_EVENTS,
    schema=obj(
        {
            "transaction_id": ID,
            "fill_id": ID,
            "order_id": ID,
            "user_id": ID,
            "symbol": TEXT,
            "side": SIDE,
            "price": POSITIVE_DECIMAL,
            "qty": POSITIVE_DECIMAL,
            "quote_qty": POSITIVE_DECIMAL,
            "fee": POSITIVE_DECIMAL,
            "fee_asset": TEXT,
            "executed_at": TIME,
        }
    ),
)

# market-data (key: symbol): Binance's @trade payload, as the exchange sends it.
register(
    "trade",
    topic=Topic.MARKET_DATA,
    schema=obj(
        {
            "s": TEXT,
            "t": {"type": "integer", "minimum": 0},
            "p": POSITIVE_DECIMAL,
            "q": POSITIVE_DECIMAL,
            "T": {"type": "integer", "minimum": 0},
            "m": {"type": "boolean"},
        },
        {"e": {"const": "trade"}, "E": {"type": "integer"}},
    ),
)
