"""Operators' view of the outbox: what is pending, failed or published, and a "retry now" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from common.admin import OperateActionsMixin
from common.outbox.models import OutboxMessage
from common.outbox.tasks import sweep_outbox


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "pending"), ("failed", "failed"), ("published", "published")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(published_at__isnull=True, attempts=0)
        if self.value() == "failed":
            return queryset.filter(published_at__isnull=True, attempts__gt=0)
        if self.value() == "published":
            return queryset.filter(published_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(OperateActionsMixin, admin.ModelAdmin):
    list_display = ["id", "event_type", "topic", "key", "state", "attempts", "created_at", "published_at"]
    list_filter = [StateFilter, "topic", "event_type"]
    search_fields = ["event_id", "key"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields] + ["payload_text"]
    exclude = ["payload"]
    actions = ["retry_now"]

    @admin.display(description="payload")
    def payload_text(self, obj: OutboxMessage) -> str:
        return bytes(obj.payload).decode(errors="replace")

    @admin.action(description="Retry now (clear the backoff and relay)", permissions=["operate"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = queryset.filter(Q(published_at__isnull=True)).update(next_attempt_at=None)
        # A running relay loop takes them on its next tick (within a second); the sweep relays them when none runs.
        sweep_outbox.delay()
        messages.info(request, f"{count} message(s) will be relayed now.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        """Published rows may go (the purge does it anyway); an unpublished one is an event not yet delivered."""
        if obj is not None and obj.published_at is None:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        kept = queryset.filter(published_at__isnull=True).count()
        super().delete_queryset(request, queryset.filter(published_at__isnull=False))
        if kept:
            messages.warning(request, f"{kept} unpublished message(s) kept: they are not delivered yet.")
