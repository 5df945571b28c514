"""The Celery app of analytics_svc."""

from common.celery_app import make_celery_app

app = make_celery_app("analytics_svc")
