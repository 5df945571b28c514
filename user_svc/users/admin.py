"""Operators' views of accounts: find users by email, deactivate them (through the service), read their history,
their sessions and their API keys (revoked through the service; a secret is never shown)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import OperateActionsMixin, ReadOnlyAdmin
from users import services
from users.models import ApiKey, TokenFamily, User, UserEvent


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "display_name", "is_active", "email_confirmed_at", "is_staff", "created_at", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", ("email_confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "display_name"]
    ordering = ["-created_at"]
    # Profile and state change through the API or the action below, so each change has its event;
    # operators edit only admin privileges here.
    readonly_fields = [
        "id",
        "email",
        "email_confirmed_at",
        "display_name",
        "is_active",
        "created_at",
        "updated_at",
        "last_login",
    ]
    fields = [*readonly_fields, "is_staff", "is_superuser", "groups", "user_permissions"]
    filter_horizontal = ["groups", "user_permissions"]
    actions = ["deactivate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are registered through the API (or ensure_demo_user), which publishes

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False  # an account is deactivated, never deleted: its history and events stay meaningful

    @admin.action(description="Deactivate selected users (publishes user.deactivated)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        ids = list(queryset.filter(is_active=True).values_list("id", flat=True))
        for user_id in ids:
            services.user_deactivate(user_id=user_id, actor=request.user, request_id=getattr(request, "request_id", ""))
        self.message_user(request, f"Deactivated {len(ids)} user(s).", messages.SUCCESS)


@admin.register(UserEvent)
class UserEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "user", "kind", "actor", "request_id"]
    list_filter = ["kind"]
    search_fields = ["user__email", "request_id"]
    list_select_related = ["user", "actor"]
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UserEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UserEvent | None = None) -> bool:
        return False


@admin.register(TokenFamily)
class TokenFamilyAdmin(ReadOnlyAdmin):
    """Sessions (one per login): they end by logout, a reused refresh token, a password change or a deactivation."""

    list_display = ["id", "user", "created_at", "expires_at", "revoked_at", "revoked_reason"]
    list_filter = ["revoked_reason"]
    search_fields = ["user__email", "=id"]
    list_select_related = ["user"]


@admin.register(ApiKey)
class ApiKeyAdmin(OperateActionsMixin, ReadOnlyAdmin):
    """API keys: operators find them (by owner, label or the key's first characters) and revoke them. The secret's
    ciphertext is not among the fields, and of the key only its first characters show."""

    list_display = ["label", "user", "key_prefix", "permissions", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["can_trade", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "label", "^api_key"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    fields = ["id", "user", "label", "key_prefix", "permissions", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).defer("secret_ciphertext")

    @admin.display(description="API key")
    def key_prefix(self, obj: ApiKey) -> str:
        return obj.key_prefix

    @admin.display(description="permissions")
    def permissions(self, obj: ApiKey) -> str:
        return ", ".join(obj.permissions)

    @admin.action(description="Revoke selected API keys (they stop working at once)", permissions=["operate"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = services.api_keys_revoke(
            key_ids=list(queryset.values_list("id", flat=True)),
            actor=request.user,
            request_id=getattr(request, "request_id", ""),
        )
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
