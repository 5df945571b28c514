"""Outbox rows: events written in the same transaction as the state they describe, waiting for the relay."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    id = models.BigAutoField(primary_key=True)  # relay order: oldest first
    event_id = models.CharField(max_length=64, unique=True)
    topic = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    payload = models.BinaryField()
    headers = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_messages"
        indexes = [
            models.Index(fields=["id"], condition=Q(published_at__isnull=True), name="outbox_pending_idx"),
            models.Index(fields=["published_at"], condition=Q(published_at__isnull=False), name="outbox_published_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.topic}"

    @property
    def state(self) -> str:
        if self.published_at:
            return "published"
        return "failed" if self.attempts else "pending"
