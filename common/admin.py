"""Admin building blocks every service uses."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.http import HttpRequest


class OperateActionsMixin:
    """Admin actions that move money or change state (`@admin.action(permissions=["operate"])`) are offered only
    to staff with the model's change permission: a view-only operator sees the rows, never acts on them.

    Django asks `has_<name>_permission` for each action's permissions; "operate" is the change permission of the
    model even where the admin forbids editing rows by hand (ReadOnlyAdmin).
    """

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


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
