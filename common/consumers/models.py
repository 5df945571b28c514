"""The inbox (what each consumer already handled) and the dead letters it could not handle."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models


class InboxMessage(models.Model):
    """(consumer, event id) is unique: inserting it in the handler's transaction makes the effect once-only."""

    id = models.BigAutoField(primary_key=True)
    consumer = models.CharField(max_length=100)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "inbox_messages"
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_consumer_event_unique")]
        # BRIN, not a B-tree: rows arrive in time order, the purge scans by time, and a B-tree on a column that
        # every claim writes cost ~40% of the claim itself (bench/consume.py).
        indexes = [BrinIndex(fields=["processed_at"], name="inbox_processed_brin")]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id}"


class DeadLetter(models.Model):
    """A message a consumer gave up on; the same bytes went to <topic>.dlq through the outbox."""

    id = models.BigAutoField(primary_key=True)
    consumer = models.CharField(max_length=100)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.BinaryField(null=True)
    value = models.BinaryField(null=True)
    headers = models.JSONField(default=list, blank=True)
    event_id = models.CharField(max_length=100, blank=True)
    event_type = models.CharField(max_length=100, blank=True)
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "dead_letters"
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "topic", "partition", "offset"], name="dead_letter_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.topic}[{self.partition}]@{self.offset}"
