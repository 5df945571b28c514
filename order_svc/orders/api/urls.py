"""API routes of order_svc."""

from django.urls import path

from common.api import ApiRootView
from orders.api import views

urlpatterns = [
    path(
        "",
        ApiRootView.as_view(endpoints={"exchange-info": "exchange-info", "orders": "orders"}),
        name="api-root",
    ),
    path("exchange-info", views.ExchangeInfoView.as_view(), name="exchange-info"),
    path("orders", views.OrderListCreateAliasView.as_view()),
    path("orders/", views.OrderListCreateView.as_view(), name="orders"),
    path("orders/<str:order_id>", views.OrderDetailView.as_view(), name="order-detail"),
]
