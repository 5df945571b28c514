"""URLs of common/'s test project: the shared platform routes and an API root."""

from django.urls import path
from rest_framework.response import Response

from common import binance
from common.api import ApiRootView
from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401


def _boom(request):
    raise RuntimeError("a bug in a view (test)")


class _Public(binance.BinanceView):
    def get(self, request):
        return Response({})


class _Signed(binance.SignedView):
    """A SIGNED endpoint of each kind: GET is USER_DATA, POST and DELETE TRADE; answers what it was given."""

    trade_methods = frozenset({"POST", "DELETE"})

    def get(self, request):
        return Response({"user": str(request.user.id), "params": binance.signed_params(request)})

    post = delete = get


urlpatterns = [
    *platform_urlpatterns(),
    path("api/", ApiRootView.as_view(), name="api-root"),
    path("boom", _boom),  # a view with a bug: the 500 is JSON
    # Binance-style endpoints (common.binance, common.binance_limits), at the paths whose weights differ.
    path("api/v3/ping", _Public.as_view()),
    path("api/v3/depth", _Public.as_view()),
    path("api/v3/ticker/24hr", _Public.as_view()),
    path("api/v3/order", _Signed.as_view()),
]
