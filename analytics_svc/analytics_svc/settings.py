"""Settings of analytics_svc: wiring only. Shared defaults and the environment come from common.settings."""

from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(service_settings(name="analytics_svc", base_dir=BASE_DIR, apps=["candles"]))

# The consumers of this service (`manage.py consume candles`). Topic and name come from the environment so
# tests can run the real command against a fresh topic and a consumer group of their own.
PLATFORM_CONSUMERS = "candles.handlers.CONSUMERS"
MARKET_DATA_TOPIC = env.str("MARKET_DATA_TOPIC", default="market-data")
CANDLES_CONSUMER_NAME = env.str("CANDLES_CONSUMER_NAME", default="candles")
