"""API routes of transaction_svc."""

from django.urls import path

from common.api import ApiRootView
from transactions.api.views import TransactionExportApi, TransactionListApi, TransactionSummaryApi

urlpatterns = [
    path(
        "",
        ApiRootView.as_view(
            endpoints={
                "transactions": "transaction-list",
                "export": "transaction-export",
                "summary": "transaction-summary",
            }
        ),
        name="api-root",
    ),
    path("transactions/", TransactionListApi.as_view(), name="transaction-list"),
    path("transactions/export.csv", TransactionExportApi.as_view(), name="transaction-export"),
    path("transactions/summary", TransactionSummaryApi.as_view(), name="transaction-summary"),
]
