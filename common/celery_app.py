"""The Celery app factory: one app per service, configured from its Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery


def make_celery_app(service: str) -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{service}.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    return app
