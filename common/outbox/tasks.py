"""Celery tasks of the outbox: relay after a commit, sweep every second, purge what was published long ago."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from common.outbox import relay
from common.outbox.services import RELAY_REQUEST_KEY


@shared_task(acks_late=True, ignore_result=True)
def relay_outbox() -> int:
    """Asked for after a commit. A relay already running finishes first, then this one drains the rest."""
    cache.delete(RELAY_REQUEST_KEY)  # commits from now on ask again, so none waits for the sweep
    return relay.relay_pending(wait_for_lock_s=2.0).sent


@shared_task(acks_late=True, ignore_result=True, expires=5)
def sweep_outbox() -> int:
    """Beat, every second: relays rows whose trigger was lost (crash, broker down, Redis down)."""
    return relay.relay_pending().sent


@shared_task(ignore_result=True)
def purge_outbox() -> int:
    hours = getattr(settings, "OUTBOX_RETENTION_HOURS", 24)
    return relay.purge_published(older_than=timedelta(hours=hours))
