"""Operators' views of portfolio_svc: amounts are read-only; paper funds are credited through the domain module."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from common.admin import OperateActionsMixin, ReadOnlyAdmin
from common.exceptions import ApplicationError
from portfolios.models import Asset, Balance, LedgerEntry, Portfolio, Price, Reservation, Settlement, Symbol
from portfolios.services import balance_credit


class CreditFundsForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.all(), initial=lambda: settings.PORTFOLIO_STARTING_ASSET)
    amount = forms.DecimalField(min_value=Decimal("0.00000001"), max_digits=38, decimal_places=18)
    reason = forms.CharField(max_length=100, initial="operator_credit")


class BalanceInline(admin.TabularInline):
    model = Balance
    fields = ["asset", "available", "locked", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Portfolio)
class PortfolioAdmin(OperateActionsMixin, admin.ModelAdmin):
    list_display = ["id", "user_id", "name", "is_default", "created_at"]
    list_filter = ["is_default"]
    search_fields = ["=id", "=user_id", "name"]
    readonly_fields = ["id", "user_id", "name", "is_default", "created_at"]
    inlines = [BalanceInline]
    actions = ["credit_paper_funds"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # portfolios come from user.registered (and the API), each with its event

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Credit paper funds", permissions=["operate"])
    def credit_paper_funds(self, request: HttpRequest, queryset: QuerySet[Portfolio]) -> HttpResponse | None:
        form = CreditFundsForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for portfolio in queryset:
                try:
                    balance_credit(
                        portfolio_id=portfolio.id,
                        asset=form.cleaned_data["asset"].code,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                    )
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{portfolio}: {exc.message}", messages.ERROR)
            self.message_user(request, f"credited {done} portfolio(s)", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Credit paper funds",
            "form": form,
            "portfolios": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/portfolios/portfolio/credit_funds.html", context)


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["portfolio", "asset", "available", "locked", "updated_at"]
    list_filter = ["asset"]
    search_fields = ["=portfolio__id", "=portfolio__user_id"]
    list_select_related = ["portfolio"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "user_id", "asset", "amount", "consumed", "released", "state", "reason", "created_at"]
    list_filter = ["state", "asset"]
    search_fields = ["=order_id", "=saga_id", "=user_id"]


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = [
        "fill_id",
        "order_id",
        "side",
        "debit_amount",
        "debit_asset",
        "credit_amount",
        "credit_asset",
        "fee",
    ]
    list_filter = ["side"]
    search_fields = ["=fill_id", "=order_id"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "user_id", "asset", "kind", "amount", "available_delta", "locked_delta", "reference"]
    list_filter = ["kind", "asset"]
    search_fields = ["=user_id", "=reference"]


@admin.register(Price)
class PriceAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "price", "trade_id", "trade_time", "updated_at"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "precision"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # balances and the ledger refer to assets


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = ["symbol", "base_asset", "quote_asset"]
