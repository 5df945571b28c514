"""Celery tasks of the consumers: the inbox is purged after a retention, like the outbox."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from common.bulk import delete_older_than


def purge_inbox_rows(*, older_than: timedelta, chunk: int = 10_000) -> int:
    """Delete inbox rows processed before the retention period, in chunks; returns how many.

    The retention must cover the longest a duplicate can still arrive: a consumer group rewound over the whole
    topic replays what Kafka still holds (its log retention, 7 days by default), and a purged row would let that
    replay apply twice.
    """
    return delete_older_than("inbox_messages", "processed_at", older_than=older_than, chunk=chunk)


@shared_task(ignore_result=True)
def purge_inbox() -> int:
    return purge_inbox_rows(older_than=timedelta(hours=settings.INBOX_RETENTION_HOURS))
