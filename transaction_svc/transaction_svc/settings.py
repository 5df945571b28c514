"""Settings of transaction_svc: wiring only. Shared defaults and the environment come from common.settings."""

from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(name="transaction_svc", base_dir=BASE_DIR, apps=["transactions"])
globals().update(_shared)

# `manage.py consume order-events`. Topic and name come from the environment so tests can run the real
# command against a fresh topic and a consumer group of their own.
PLATFORM_CONSUMERS = "transactions.handlers.CONSUMERS"
ORDER_EVENTS_TOPIC = env.str("ORDER_EVENTS_TOPIC", default="order-events")
ORDER_EVENTS_CONSUMER_NAME = env.str("ORDER_EVENTS_CONSUMER_NAME", default="order-events")

# Month partitions of the ledger kept ready ahead of time (and one behind, for late fills).
TRANSACTION_PARTITION_MONTHS_AHEAD = env.int("TRANSACTION_PARTITION_MONTHS_AHEAD", default=3)

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    # Hourly is far more often than a month turns over; a run with nothing to create is a few catalog reads.
    "transactions-ensure-partitions": {"task": "transactions.tasks.ensure_partitions", "schedule": 3600.0},
}
