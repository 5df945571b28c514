"""URLs of user_svc: the platform's shared routes, the JWKS every verifier may fetch, and this service's API."""

from django.urls import include, path
from users.api.views import JwksView

from common.urls import platform_urlpatterns

urlpatterns = [
    *platform_urlpatterns(),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    path("api/", include("users.api.urls")),
]
