"""Thin Celery tasks of analytics_svc: the kept trades' retention purge (beat)."""

from __future__ import annotations

from celery import shared_task

from candles.services import market_trades_purge


@shared_task(acks_late=True, ignore_result=True, expires=60)
def purge_market_trades() -> int:
    return market_trades_purge()
