"""API routes of portfolio_svc."""

from django.urls import path

from common.api import ApiRootView
from portfolios.api import views

urlpatterns = [
    path(
        "",
        ApiRootView.as_view(endpoints={"portfolios": "portfolio-list", "balances": "balance-list"}),
        name="api-root",
    ),
    path("portfolios/", views.PortfolioListView.as_view(), name="portfolio-list"),
    path("portfolios/<uuid:portfolio_id>/", views.PortfolioDetailView.as_view(), name="portfolio-detail"),
    path("balances/", views.BalanceListView.as_view(), name="balance-list"),
]
