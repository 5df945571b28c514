"""transaction_svc: The ledger of executed trades."""

from transaction_svc.celery import app as celery_app

__all__ = ["celery_app"]
