"""user_svc: Accounts, JWT issuing and user-events."""

from user_svc.celery import app as celery_app

__all__ = ["celery_app"]
