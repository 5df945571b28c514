"""URLs of transaction_svc: the platform's shared routes plus this service's API."""

from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401

urlpatterns = [
    *platform_urlpatterns(),
    path("api/", include("transactions.api.urls")),
]
