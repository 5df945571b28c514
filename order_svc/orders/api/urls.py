"""API routes of order_svc, Binance's public /api/v3/exchangeInfo, depth and ticker/bookTicker and its SIGNED order,
order/test, openOrders, allOrders and myTrades among them (infra/routes.toml sends those here; the rest of /api/v3/
is analytics_svc's, and /api/v3/account portfolio_svc's)."""

from django.urls import path

from common.api import ApiRootView
from orders.api import binance, binance_trading, views

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
                "v3-order": "v3-order",
                "v3-order-test": "v3-order-test",
                "v3-open-orders": "v3-open-orders",
                "v3-all-orders": "v3-all-orders",
                "v3-my-trades": "v3-my-trades",
            }
        ),
        name="api-root",
    ),
    path("exchange-info", views.ExchangeInfoView.as_view(), name="exchange-info"),
    path("v3/exchangeInfo", binance.ExchangeInfoView.as_view(), name="v3-exchange-info"),
    path("v3/depth", binance.DepthView.as_view(), name="v3-depth"),
    path("v3/ticker/bookTicker", binance.BookTickerView.as_view(), name="v3-book-ticker"),
    path("v3/order", binance_trading.OrderView.as_view(), name="v3-order"),
    path("v3/order/test", binance_trading.TestOrderView.as_view(), name="v3-order-test"),
    path("v3/openOrders", binance_trading.OpenOrdersView.as_view(), name="v3-open-orders"),
    path("v3/allOrders", binance_trading.AllOrdersView.as_view(), name="v3-all-orders"),
    path("v3/myTrades", binance_trading.MyTradesView.as_view(), name="v3-my-trades"),
    path("orders", views.OrderListCreateAliasView.as_view()),
    path("orders/", views.OrderListCreateView.as_view(), name="orders"),
    path("orders/<str:order_id>", views.OrderDetailView.as_view(), name="order-detail"),
]
