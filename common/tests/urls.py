"""URLs of common/'s test project: the shared platform routes and an API root."""

from django.urls import path

from common.api import ApiRootView
from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401


def _boom(request):
    raise RuntimeError("a bug in a view (test)")


urlpatterns = [
    *platform_urlpatterns(),
    path("api/", ApiRootView.as_view(), name="api-root"),
    path("boom", _boom),  # a view with a bug: the 500 is JSON
]
