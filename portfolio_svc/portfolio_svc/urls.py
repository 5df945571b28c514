"""URLs of portfolio_svc: the platform's shared routes plus this service's API."""

from django.urls import include, path

from common.urls import platform_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
    path("api/", include("portfolios.api.urls")),
]
