"""order_svc: Orders and the order saga."""

from order_svc.celery import app as celery_app

__all__ = ["celery_app"]
