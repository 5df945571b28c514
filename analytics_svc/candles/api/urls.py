"""API routes of analytics_svc: Binance-compatible /api/v3/ and the browsable candles."""

from django.urls import path

from candles.api.views import AnalyticsApiRootView, CandleListView, KlinesView, TickerPriceView

urlpatterns = [
    path("", AnalyticsApiRootView.as_view(), name="api-root"),
    path("v3/klines", KlinesView.as_view(), name="klines"),
    path("v3/ticker/price", TickerPriceView.as_view(), name="ticker-price"),
    path("candles/", CandleListView.as_view(), name="candle-list"),
]
