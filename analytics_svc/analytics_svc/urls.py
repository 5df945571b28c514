"""URLs of analytics_svc: the platform's shared routes, this service's API (candles, listenKeys) and the chart page."""

from candles.views import chart
from django.urls import include, path

from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401

urlpatterns = [
    *platform_urlpatterns(),
    path("api/", include("candles.api.urls")),
    path("api/", include("streams.api.urls")),
    path("chart/", chart, name="chart"),
]
