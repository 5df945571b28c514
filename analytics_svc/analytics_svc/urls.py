"""URLs of analytics_svc: the platform's shared routes, this service's API and the chart page."""

from candles.views import chart
from django.urls import include, path

from common.urls import platform_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
    path("api/", include("candles.api.urls")),
    path("chart/", chart, name="chart"),
]
