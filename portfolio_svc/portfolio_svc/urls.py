"""URLs of portfolio_svc: the platform's shared routes plus this service's API."""

from django.urls import include, path
from portfolios.api.binance import AccountView

from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401

urlpatterns = [
    *platform_urlpatterns(),
    path("api/", include("portfolios.api.urls")),
    # Binance's SIGNED account (the gateway checks the signature with user_svc first: infra/routes.toml `signed`).
    path("api/v3/account", AccountView.as_view(), name="binance-account"),
]
