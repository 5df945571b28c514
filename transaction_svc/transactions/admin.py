"""Operators' views of the ledger: transactions (read-only, by date) and the order events recorded."""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from transactions.models import Transaction, TransactionEvent


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    # Drilling down the date hierarchy narrows executed_at, so each page reads only its month's partition.
    date_hierarchy = "executed_at"
    list_display = ["executed_at", "symbol", "side", "price", "qty", "quote_qty", "fee", "fee_asset", "user_id"]
    list_filter = ["side"]
    search_fields = ["=fill_id", "=order_id", "=symbol"]
    ordering = ["-executed_at", "-id"]
    # A count over every partition on each page view is the expensive part of a big changelist.
    show_full_result_count = False
    list_per_page = 50


@admin.register(TransactionEvent)
class TransactionEventAdmin(ReadOnlyAdmin):
    date_hierarchy = "occurred_at"
    list_display = ["occurred_at", "event_type", "order_id", "symbol", "status", "fill_id", "user_id"]
    list_filter = ["event_type"]
    search_fields = ["=order_id", "=fill_id", "=event_id"]
    ordering = ["-id"]
    show_full_result_count = False
