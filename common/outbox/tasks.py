"""Celery tasks of the outbox: the relay loop woken at commit, a sweep every second, purge of what is long published."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from common.celery_app import worker_stopping
from common.outbox import relay


@shared_task(ignore_result=True)
def relay_loop() -> int:
    """One per service (its own queue, `<service>.relay`): relays at each commit for OUTBOX_RELAY_LOOP_S, then again.

    Beat sends this every 5 s (expiring unstarted after 5 s): while a loop runs, the copy returns at once.
    A bounded run, not a forever task, so a deploy or worker restart never waits on it; it stops within a
    second of a worker shutdown, and after a lost database connection it leaves the restart to beat.
    Not acks_late: a crash loses nothing but the loop, which beat restarts.
    """
    result = relay.relay_loop(
        run_for_s=getattr(settings, "OUTBOX_RELAY_LOOP_S", 300.0), should_stop=worker_stopping.is_set
    )
    if not (result.locked_out or result.connection_lost or worker_stopping.is_set()):
        relay_loop.delay()
    return result.sent


@shared_task(acks_late=True, ignore_result=True, expires=5)
def sweep_outbox() -> int:
    """Beat, every second: one pass when no relay loop holds the lock (the loop is down); else nothing, at once."""
    return relay.relay_pending().sent


@shared_task(ignore_result=True)
def purge_outbox() -> int:
    hours = getattr(settings, "OUTBOX_RETENTION_HOURS", 24)
    return relay.purge_published(older_than=timedelta(hours=hours))
