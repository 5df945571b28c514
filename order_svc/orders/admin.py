"""Operators' views of order_svc: orders (with a cancel action), their events, fills, sagas and symbols."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import OperateActionsMixin, ReadOnlyAdmin
from common.exceptions import ApplicationError
from orders.models import Fill, LastTrade, Order, OrderEvent, Saga, Symbol
from orders.services import order_cancel, saga_retry_step


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["created_at", "type", "event_id", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class FillInline(admin.TabularInline):
    model = Fill
    fields = ["executed_at", "trade_id", "price", "qty", "quote_qty", "fee", "fee_asset", "is_maker"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(OperateActionsMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "user_id",
        "symbol",
        "side",
        "type",
        "status",
        "quantity",
        "price",
        "executed_qty",
        "created_at",
    ]
    list_filter = ["status", "symbol", "side", "type"]
    search_fields = ["=id", "=user_id", "client_order_id"]
    date_hierarchy = "created_at"
    inlines = [FillInline, OrderEventInline]
    actions = ["cancel_orders"]

    @admin.action(description="Cancel the selected open orders (runs the saga's release)", permissions=["operate"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                order_cancel(order_id=order_id, reason="canceled by an operator")
                done += 1
            except ApplicationError as exc:
                refused.append(f"{order_id}: {exc.message}")
        if done:
            self.message_user(request, f"Canceled {done} order(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "order_id", "event_id"]
    list_filter = ["type"]
    search_fields = ["=order__id", "=event_id"]


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = ["executed_at", "order_id", "trade_id", "price", "qty", "quote_qty", "fee", "fee_asset", "is_maker"]
    search_fields = ["=order__id", "=id"]


@admin.register(Saga)
class SagaAdmin(OperateActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "type", "state", "current_step", "deadline", "order_id", "updated_at"]
    list_filter = ["state", "current_step", "type"]
    search_fields = ["=id", "=order__id"]
    readonly_fields = ["history", "data"]
    actions = ["retry_step"]

    @admin.action(description="Retry the current step of the selected stuck sagas", permissions=["operate"])
    def retry_step(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        for saga_id in queryset.values_list("id", flat=True):
            try:
                step = saga_retry_step(saga_id=saga_id)
                self.message_user(request, f"{saga_id}: sent {step} again.", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, f"{saga_id}: {exc.message}", messages.WARNING)


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = ["symbol", "base_asset", "quote_asset", "is_trading", "tick_size", "step_size", "min_notional"]
    list_filter = ["is_trading"]


@admin.register(LastTrade)
class LastTradeAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "trade_id", "price", "qty", "traded_at"]
