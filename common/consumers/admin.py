"""Operators' view of the inbox (read-only) and of dead letters, with a "replay" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import OperateActionsMixin, ReadOnlyAdmin
from common.consumers.base import replay_dead_letters
from common.consumers.models import DeadLetter, InboxMessage


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "consumer",
        "event_type",
        "event_id",
        "topic",
        "partition",
        "offset",
        "processed_at",
    ]
    list_filter = ["consumer", "event_type"]
    search_fields = ["event_id"]


@admin.register(DeadLetter)
class DeadLetterAdmin(OperateActionsMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "consumer",
        "topic",
        "partition",
        "offset",
        "event_type",
        "short_error",
        "created_at",
        "replayed_at",
    ]
    list_filter = ["consumer", "topic", ("replayed_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "error"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields if f.name not in ("key", "value")] + ["value_text"]
    exclude = ["key", "value"]
    actions = ["replay"]

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return obj.error[:120]

    @admin.display(description="message")
    def value_text(self, obj: DeadLetter) -> str:
        return bytes(obj.value or b"").decode(errors="replace")

    @admin.action(description="Replay: hand the message to its consumer again", permissions=["operate"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        pending = queryset.filter(replayed_at__isnull=True)
        total = pending.count()
        count = replay_dead_letters(pending)
        messages.info(request, f"{count} of {total} message(s) handled again; the others are still dead letters.")
