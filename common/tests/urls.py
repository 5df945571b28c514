"""URLs of common/'s test project: the shared platform routes and an API root."""

from django.urls import path

from common.api import ApiRootView
from common.urls import platform_urlpatterns

urlpatterns = [*platform_urlpatterns(), path("api/", ApiRootView.as_view(), name="api-root")]
