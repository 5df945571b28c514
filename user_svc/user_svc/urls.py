"""URLs of user_svc: the platform's shared routes, the JWKS every verifier may fetch, and this service's API."""

from django.urls import include, path
from users.api.views import GatewayCheckView, JwksView

from common.urls import handler400, handler403, handler404, handler500, platform_urlpatterns  # noqa: F401

urlpatterns = [
    *platform_urlpatterns(),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    path("api/", include("users.api.urls")),
    # Asked by the gateway alone (infra/nginx/binance.js); outside /api/, so no route of routes.toml reaches it.
    path("internal/binance/check", GatewayCheckView.as_view(), name="gateway-binance-check"),
]
