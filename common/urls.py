"""URL patterns every service serves: admin, OpenAPI schema and docs, health."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common import health

# Django's error views, JSON in the platform's shape: every service's urls.py imports these names, which is
# where Django looks for them (a service never answers an HTML error page).
handler400 = "common.exceptions.bad_request"
handler403 = "common.exceptions.permission_denied"
handler404 = "common.exceptions.not_found"
handler500 = "common.exceptions.server_error"


def platform_urlpatterns() -> list[URLPattern | URLResolver]:
    return [
        path("admin/", admin.site.urls),
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
        path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
        path("healthz", health.healthz, name="healthz"),
        path("readyz", health.readyz, name="readyz"),
    ]
