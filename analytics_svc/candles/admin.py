"""Operators' views of the candles app: candles of every interval (read-only) and the per-symbol marks."""

from __future__ import annotations

from django.contrib import admin

from candles.models import CandleRow, SymbolCursor
from common.admin import ReadOnlyAdmin


@admin.register(CandleRow)
class CandleAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "trades"]
    list_filter = ["interval", "symbol"]
    search_fields = ["symbol"]
    date_hierarchy = "open_time"
    show_full_result_count = False  # a count over the union of four tables is slow and adds nothing


@admin.register(SymbolCursor)
class SymbolCursorAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "last_trade_id", "last_price", "last_trade_time", "trades_applied", "updated_at"]
    search_fields = ["symbol"]
