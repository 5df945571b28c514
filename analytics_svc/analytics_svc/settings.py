"""Settings of analytics_svc: wiring only. Shared defaults and the environment come from common.settings."""

from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(name="analytics_svc", base_dir=BASE_DIR, apps=["candles", "streams"])
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

# The streams server (`manage.py serve_streams`): Binance's websocket streams from these topics, read outside any
# consumer group (common/topics.py READERS); the platform check holds what it reads to the ACL table.
PLATFORM_READERS = "streams.reader.read_topics"
ORDER_EVENTS_TOPIC = env.str("ORDER_EVENTS_TOPIC", default="order-events")
BALANCE_EVENTS_TOPIC = env.str("BALANCE_EVENTS_TOPIC", default="balance-events")
STREAMS_MAX_STREAMS = env.int("STREAMS_MAX_STREAMS", default=1024)  # per connection, as Binance
STREAMS_MAX_MESSAGES_PER_S = env.int("STREAMS_MAX_MESSAGES_PER_S", default=5)  # incoming, per connection
STREAMS_CLIENT_QUEUE_BYTES = env.int("STREAMS_CLIENT_QUEUE_BYTES", default=1 << 20)  # unsent bytes; more: 1008
STREAMS_LISTEN_KEY_CHECK_S = env.float("STREAMS_LISTEN_KEY_CHECK_S", default=5.0)
STREAMS_TICKER_REFRESH_S = env.float("STREAMS_TICKER_REFRESH_S", default=60.0)
STREAMS_OPEN_ORDERS = env.int("STREAMS_OPEN_ORDERS", default=100_000)  # open orders' terms kept for executionReport
LISTEN_KEY_TTL_S = env.int("LISTEN_KEY_TTL_S", default=3600)

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "market-trades-purge": {"task": "candles.tasks.purge_market_trades", "schedule": 300.0},
}
