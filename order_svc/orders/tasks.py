"""Thin Celery tasks of order_svc: the saga's and immediate orders' deadline sweeps (beat, every second)."""

from __future__ import annotations

from celery import shared_task

from orders.services import orders_expire_unfilled_immediate, sagas_expire_overdue


@shared_task(acks_late=True, ignore_result=True, expires=5)
def expire_overdue_sagas() -> int:
    return sagas_expire_overdue()


@shared_task(acks_late=True, ignore_result=True, expires=5)
def expire_unfilled_immediate_orders() -> int:
    return orders_expire_unfilled_immediate()
