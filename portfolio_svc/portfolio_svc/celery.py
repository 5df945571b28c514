"""The Celery app of portfolio_svc."""

from common.celery_app import make_celery_app

app = make_celery_app("portfolio_svc")
