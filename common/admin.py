"""Admin building blocks every service uses."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """For tables only the platform writes (ledgers, candles, inboxes, outboxes): operators look, never edit.

    A hand edit there would break what the writer guarantees (exactly-once folding, idempotency by id).
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
