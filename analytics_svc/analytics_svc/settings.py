"""Settings of analytics_svc: wiring only. Shared defaults and the environment come from common.settings."""

from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(name="analytics_svc", base_dir=BASE_DIR, apps=["candles"])
globals().update(_shared)

# The schema lists the symbols that have candles now, so clients and the fuzz tests ask for ones that exist.
SPECTACULAR_SETTINGS = {
    **_shared["SPECTACULAR_SETTINGS"],
    "POSTPROCESSING_HOOKS": [
        *_shared["SPECTACULAR_SETTINGS"]["POSTPROCESSING_HOOKS"],
        "candles.api.schemas.symbol_enum",
    ],
}

# The consumers of this service (`manage.py consume candles`). Topic and name come from the environment so
# tests can run the real command against a fresh topic and a consumer group of their own.
PLATFORM_CONSUMERS = "candles.handlers.CONSUMERS"
MARKET_DATA_TOPIC = env.str("MARKET_DATA_TOPIC", default="market-data")
CANDLES_CONSUMER_NAME = env.str("CANDLES_CONSUMER_NAME", default="candles")

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "market-trades-purge": {"task": "candles.tasks.purge_market_trades", "schedule": 300.0},
}
