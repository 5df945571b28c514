"""API routes of the streams app: Binance's listenKey endpoints (the streams themselves are the streams server's)."""

from django.urls import path

from streams.api import views

urlpatterns = [
    path("v3/userDataStream", views.UserDataStreamView.as_view(), name="user-data-stream"),
]
