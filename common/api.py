"""The browsable root of a service's API: what it serves, with links."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRootView(APIView):
    """Lists this service's endpoints; `endpoints` maps a label to a URL name."""

    permission_classes = [AllowAny]
    authentication_classes = []
    endpoints: dict[str, str] = {}

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="This service's endpoints")
    def get(self, request: Request) -> Response:
        links = {}
        for label, name in {**self.endpoints, "schema": "schema", "docs": "docs"}.items():
            try:
                links[label] = reverse(name, request=request)
            except NoReverseMatch:
                continue
        return Response({"service": settings.SERVICE_NAME, "endpoints": links})
