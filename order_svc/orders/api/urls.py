"""API routes of order_svc, Binance's /api/v3/exchangeInfo, depth and ticker/bookTicker among them (infra/routes.toml
sends those three here; the rest of /api/v3/ is analytics_svc's)."""

from django.urls import path

from common.api import ApiRootView
from orders.api import binance, views

urlpatterns = [
    path(
        "",
        ApiRootView.as_view(
            endpoints={
                "exchange-info": "exchange-info",
                "orders": "orders",
                "v3-exchange-info": "v3-exchange-info",
                "v3-depth": "v3-depth",
                "v3-book-ticker": "v3-book-ticker",
            }
        ),
        name="api-root",
    ),
    path("exchange-info", views.ExchangeInfoView.as_view(), name="exchange-info"),
    path("v3/exchangeInfo", binance.ExchangeInfoView.as_view(), name="v3-exchange-info"),
    path("v3/depth", binance.DepthView.as_view(), name="v3-depth"),
    path("v3/ticker/bookTicker", binance.BookTickerView.as_view(), name="v3-book-ticker"),
    path("orders", views.OrderListCreateAliasView.as_view()),
    path("orders/", views.OrderListCreateView.as_view(), name="orders"),
    path("orders/<str:order_id>", views.OrderDetailView.as_view(), name="order-detail"),
]
