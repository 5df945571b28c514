"""Celery tasks of transaction_svc: keep the ledger's month partitions ready ahead of time."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from transactions.selectors import default_partition_rows
from transactions.services import partitions_ensure

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, expires=600)
def ensure_partitions() -> list[str]:
    """Beat, hourly: create the coming months' partitions, and report rows that landed in the default one."""
    created = partitions_ensure(months_ahead=settings.TRANSACTION_PARTITION_MONTHS_AHEAD)
    strays = default_partition_rows()
    if strays:
        # Not moved automatically: an operator should see why (clock skew, a replay of old fills) first;
        # `manage.py ensure_partitions --adopt-default` moves them.
        logger.error(
            "ledger rows in the default partition",
            extra={"months": {str(m): n for m, n in strays.items()}, "rows": sum(strays.values())},
        )
    return created
