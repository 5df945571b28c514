"""portfolio_svc: Paper portfolios, balances, reservations and settlement."""

from portfolio_svc.celery import app as celery_app

__all__ = ["celery_app"]
