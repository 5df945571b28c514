"""Settings of order_svc: wiring only. Shared defaults and the environment come from common.settings."""

from decimal import Decimal
from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(name="order_svc", base_dir=BASE_DIR, apps=["orders"])
globals().update(_shared)

# The consumers of this service: `manage.py consume balance-events` (saga replies) and
# `manage.py consume market-data` (the fill engine). Topics come from the environment so tests can run
# the real command against fresh topics.
PLATFORM_CONSUMERS = "orders.handlers.CONSUMERS"
BALANCE_EVENTS_TOPIC = env.str("BALANCE_EVENTS_TOPIC", default="balance-events")
MARKET_DATA_TOPIC = env.str("MARKET_DATA_TOPIC", default="market-data")

# The order saga: no reply from portfolio_svc within this many seconds -> compensate and reject.
ORDER_SAGA_TIMEOUT_S = env.float("ORDER_SAGA_TIMEOUT_S", default=10.0)
# MARKET, IOC and FOK orders wait this long for a (crossing) trade after acceptance, then expire.
ORDER_IMMEDIATE_TIMEOUT_S = env.float("ORDER_IMMEDIATE_TIMEOUT_S", default=30.0)
# Binance's POST /api/v3/order waits at most this long for the saga's outcome (NEW or -2010; a MARKET order's
# fills too), woken by a PostgreSQL notification (orders.notifications); then it answers with what is known.
ORDER_BINANCE_WAIT_S = env.float("ORDER_BINANCE_WAIT_S", default=2.0)
# A MARKET BUY given in base quantity reserves qty x last price x (1 + buffer).
ORDER_MARKET_BUY_BUFFER = Decimal(env.str("ORDER_MARKET_BUY_BUFFER", default="0.05"))
# Binance's default spot rates; the fee is charged in the asset the order receives.
ORDER_MAKER_FEE_RATE = Decimal(env.str("ORDER_MAKER_FEE_RATE", default="0.001"))
ORDER_TAKER_FEE_RATE = Decimal(env.str("ORDER_TAKER_FEE_RATE", default="0.001"))

# The schema lists the symbols this exchange trades now, so clients and the fuzz tests send ones that exist.
SPECTACULAR_SETTINGS = {
    **_shared["SPECTACULAR_SETTINGS"],
    "POSTPROCESSING_HOOKS": [
        *_shared["SPECTACULAR_SETTINGS"]["POSTPROCESSING_HOOKS"],
        "orders.api.schemas.symbol_enum",
    ],
}

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "order-saga-deadlines": {"task": "orders.tasks.expire_overdue_sagas", "schedule": 1.0},
    "order-immediate-deadlines": {"task": "orders.tasks.expire_unfilled_immediate_orders", "schedule": 1.0},
}
