"""The Celery app of order_svc."""

from common.celery_app import make_celery_app

app = make_celery_app("order_svc")
