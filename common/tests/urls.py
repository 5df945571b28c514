"""URLs of common/'s test project: just the shared platform routes."""

from common.urls import platform_urlpatterns

urlpatterns = platform_urlpatterns()
