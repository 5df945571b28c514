"""The Celery app of user_svc."""

from common.celery_app import make_celery_app

app = make_celery_app("user_svc")
