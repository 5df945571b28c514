"""The Celery app of transaction_svc."""

from common.celery_app import make_celery_app

app = make_celery_app("transaction_svc")
