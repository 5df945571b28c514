"""analytics_svc: Market-data feed and OHLCV candles."""

from analytics_svc.celery import app as celery_app

__all__ = ["celery_app"]
