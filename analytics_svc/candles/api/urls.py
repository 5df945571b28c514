"""API routes of analytics_svc."""

from django.urls import path

from common.api import ApiRootView

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
]
